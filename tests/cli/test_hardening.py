"""The command line and config files under misuse: misspelt keys, wrong types, finite spaces,
directories for files, no terminal, closed pipes, CLI words in errors, verbosity, progress."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import airda
import airda._logging as alog
from airda.cli import main
from airda.space import Categorical, Float
from airda.trial import FrozenTrial

ROOT = Path(__file__).resolve().parents[2]

CONFIG = textwrap.dedent("""
    [study]
    name = "cfg"
    direction = "minimize"
    strategy = "halton"
    seed = 0

    [objective]
    function = "tests.objectives:quadratic"

    [budget]
    n_trials = 4

    [space]
    x = { type = "float", low = -3.0, high = 3.0 }
""")


@pytest.fixture(autouse=True)
def _default_verbosity(monkeypatch):
    """Each test starts at INFO with no inherited environment settings, and leaves it so."""
    monkeypatch.delenv(alog.ENV_VERBOSITY, raising=False)
    monkeypatch.delenv(alog.ENV_PROGRESS_INTERVAL, raising=False)
    with alog.verbosity(alog.INFO):
        yield


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ---- config files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "n_trials = 4",
            "ntrials = 40",
            "unknown key 'ntrials' in [budget] (did you mean 'n_trials'?); valid keys: "
            "n_trials, timeout, workers",
        ),
        (
            'direction = "minimize"',
            'direciton = "maximize"',
            "unknown key 'direciton' in [study] (did you mean 'direction'?)",
        ),
        (
            "n_trials = 4",
            'n_trials = "five"',
            "[budget] n_trials must be an integer, got 'five' (a string)",
        ),
        ("n_trials = 4", "n_trials = 4.5", "[budget] n_trials must be an integer, got 4.5"),
        ("n_trials = 4", "n_trials = true", "n_trials must be an integer, got True (a boolean)"),
        ("n_trials = 4", "timeout = 'soon'", "[budget] timeout must be a number, got 'soon'"),
        ("n_trials = 4", "n_trials = -1", "[budget] n_trials must be >= 0"),
        ("n_trials = 4", "n_trials = 4\nworkers = 0", "[budget] workers must be >= 1"),
        ("seed = 0", "seed = '0'", "[study] seed must be an integer, got '0' (a string)"),
        ('"minimize"', '"maximise"', "got 'maximise' (did you mean 'maximize'?)"),
        ('"halton"', '"haltonn"', "strategy 'haltonn' is unknown (did you mean 'halton'?)"),
        (
            "high = 3.0",
            "hgih = 3.0",
            "unknown key 'hgih' in [space] x (float) (did you mean 'high'?)",
        ),
        ('type = "float"', 'type = "flaot"', "unknown type 'flaot' (did you mean 'float'?)"),
        (
            "[budget]\nn_trials = 4",
            "[budget]\nn_trials = 4\n[strategy]\nname = 'rea'",
            "the strategy's name goes in [study] strategy",
        ),
        (
            "[budget]\nn_trials = 4",
            "[budget]\nn_trials = 4\n[strategy.options]\nscramble = true",
            "unknown key 'scramble' in [strategy.options]: strategy 'halton' takes no options",
        ),
        (
            '"halton"',
            '"rea"\n[strategy.options]\npopulaton = 5',
            "unknown key 'populaton' in [strategy.options] of 'rea' (did you mean 'population'?)"
            "; valid keys: population, sample_size, mutations",
        ),
        ("[budget]\nn_trials = 4", "[budgte]\nn_trials = 4", "(did you mean [budget]?)"),
    ],
)
def test_config_mistakes_are_errors_that_name_the_key(tmp_path, capsys, old, new, message):
    assert old in CONFIG
    path = write(tmp_path, CONFIG.replace(old, new))
    db = tmp_path / "s.db"
    code, _out, err = run_cli(["run", str(path), "--storage", str(db)], capsys)
    assert code == 1
    assert message in err
    assert not db.exists()  # checked before anything is created


def test_a_key_at_the_top_of_the_file_says_where_it_belongs(tmp_path, capsys):
    path = write(tmp_path, "n_trials = 40\n" + CONFIG)
    code, _, err = run_cli(["run", str(path), "--storage", str(tmp_path / "s.db")], capsys)
    assert code == 1
    assert "unknown key 'n_trials' at the top of the file (it belongs in [budget])" in err


def test_the_example_configs_pass_the_checks():
    from airda.cli.run import read_config

    for example in sorted((ROOT / "examples").glob("*.toml")):
        read_config(example)


def test_no_budget_is_an_error_before_anything_is_created(tmp_path, capsys):
    path = write(tmp_path, CONFIG.replace("n_trials = 4", ""))
    db = tmp_path / "s.db"
    code, _, err = run_cli(["run", str(path), "--storage", str(db)], capsys)
    assert code == 1
    assert "give [budget] n_trials or timeout (or --n-trials / --timeout)" in err
    assert not db.exists()
    finite = write(tmp_path, FINITE.replace("n_trials = 50", ""), "finite.toml")
    assert main(["run", str(finite), "--storage", str(db)]) == 0  # its size is its budget
    assert "running 6 more (the 6 untried" in capsys.readouterr().out


def test_rerunning_says_what_the_study_has(tmp_path, capsys):
    path = write(tmp_path, CONFIG)
    db = str(tmp_path / "s.db")
    code, out, _ = run_cli(["run", str(path), "--storage", db], capsys)
    assert code == 0
    assert "'cfg' in sqlite:" in out
    assert "new study" in out
    code, out, _ = run_cli(["run", str(path), "--storage", db], capsys)
    assert code == 0
    assert "already has 4 trials (4 complete), best " in out
    assert "running 4 more with halton" in out


def test_a_rerun_with_another_direction_is_refused(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    assert main(["run", str(write(tmp_path, CONFIG)), "--storage", db]) == 0
    flipped = write(tmp_path, CONFIG.replace('"minimize"', '"maximize"'), "flipped.toml")
    code, _, err = run_cli(["run", str(flipped), "--storage", db], capsys)
    assert code == 1
    assert "minimize" in err
    assert "maximize" in err
    assert len(airda.load_study("cfg", storage=db).trials) == 4


FINITE = CONFIG.replace(
    'x = { type = "float", low = -3.0, high = 3.0 }',
    'x = { type = "categorical", choices = [-1.0, 0.0, 1.0] }\n'
    'y = { type = "categorical", choices = [1, 2] }',
).replace("n_trials = 4", "n_trials = 50")


def test_a_finite_space_stops_when_every_candidate_was_tried(tmp_path, capsys):
    """Before: 50 trials of 6 candidates (44 reused results); a timeout alone ran for ever."""
    db = str(tmp_path / "s.db")
    path = write(tmp_path, FINITE.replace('"halton"', '"grid"'))
    code, out, _ = run_cli(["run", str(path), "--storage", db], capsys)
    assert code == 0
    assert "running 6 more (the 6 untried of the space's 6 candidates)" in out
    study = airda.load_study("cfg", storage=db)
    assert len(study.trials) == 6
    assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == 6
    code, out, _ = run_cli(["run", str(path), "--storage", db], capsys)
    assert code == 0
    assert "every one of the 6 candidates of the space has been tried" in out
    assert len(airda.load_study("cfg", storage=db).trials) == 6
    timeout_only = write(tmp_path, FINITE.replace("n_trials = 50", "timeout = 600"), "t.toml")
    code, out, _ = run_cli(["run", str(timeout_only), "--storage", db], capsys)
    assert code == 0
    assert "every one of the 6 candidates" in out


def test_reused_results_do_not_consume_the_trial_budget(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    path = write(tmp_path, FINITE.replace('"halton"', '"random"'))
    assert main(["run", str(path), "--storage", db]) == 0
    study = airda.load_study("cfg", storage=db)
    evaluated = [t for t in study.trials if "cached_from" not in t.system_attrs]
    assert len(evaluated) == 6  # every candidate, however many repeats random proposed
    code, out, _ = run_cli(["run", str(path), "--storage", db], capsys)
    assert code == 0
    assert "every one of the 6 candidates" in out


def test_optimize_counts_only_evaluations():
    study = airda.create_study(space={"x": Categorical(list(range(8)))}, seed=0)
    study.optimize(lambda t: t["x"], n_trials=6)
    evaluated = [t for t in study.trials if "cached_from" not in t.system_attrs]
    assert len(evaluated) == 6
    assert len(study.trials) > 6  # random search of 8 candidates repeats some


def _study_with_a_reused_result(db: Path) -> None:
    study = airda.create_study("dup", storage=db, space={"x": Float(0, 1)}, seed=0)
    study.enqueue({"x": 0.5})
    study.enqueue({"x": 0.5})
    study.enqueue({"x": 0.25})
    study.optimize(lambda t: t["x"], n_trials=2)  # two evaluations; the reused one is free
    assert [t.params["x"] for t in study.trials] == [0.5, 0.5, 0.25]
    assert study.trials[1].system_attrs["cached_from"] == 0


def test_show_lists_each_candidate_once(tmp_path, capsys):
    db = tmp_path / "s.db"
    _study_with_a_reused_result(db)
    code, out, _ = run_cli(["studies", "show", "dup", "--storage", str(db)], capsys)
    assert code == 0
    top = out[out.index("top 2:") :]
    assert [line.split()[0] for line in top.splitlines()[3:]] == ["2", "0"]
    assert "3 trials: 3 complete, 1 of them reusing an earlier trial's result" in out


# ---- storage, delete, export -------------------------------------------------------------------


@pytest.mark.parametrize("command", [["studies", "list"], ["eval", "report", "x"]])
def test_a_directory_is_not_a_storage(tmp_path, capsys, command):
    code, _, err = run_cli([*command, "--storage", f"{tmp_path}/"], capsys)
    assert code == 1
    assert f"--storage '{tmp_path}/' is a directory; give a file, e.g. " in err
    code, _, err = run_cli([*command, "--storage", str(tmp_path)], capsys)
    assert "is a directory" in err


def test_run_refuses_a_directory_storage(tmp_path, capsys):
    path = write(tmp_path, CONFIG)
    code, _, err = run_cli(["run", str(path), "--storage", str(tmp_path)], capsys)
    assert code == 1
    assert "--storage" in err
    assert "is a directory" in err
    in_file = write(tmp_path, CONFIG.replace("seed = 0", f'seed = 0\nstorage = "{tmp_path}/"'))
    code, _, err = run_cli(["run", str(in_file)], capsys)
    assert code == 1
    assert "[study] storage" in err
    assert "is a directory" in err


def test_delete_without_a_terminal_needs_yes(tmp_path, monkeypatch, capsys):
    db = tmp_path / "d.db"
    airda.create_study("keep", storage=db, space={"x": Float(0, 1)})
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # a pipe or /dev/null: no terminal
    code, _, err = run_cli(["studies", "delete", "keep", "--storage", str(db)], capsys)
    assert code == 1
    assert "no terminal to confirm on; pass --yes" in err
    assert "EOFError" not in err
    assert airda.load_study("keep", storage=db).name == "keep"
    assert main(["studies", "delete", "keep", "--storage", str(db), "--yes"]) == 0


def test_delete_on_a_terminal_takes_ctrl_d_as_no(tmp_path, monkeypatch, capsys):
    db = tmp_path / "d.db"
    airda.create_study("keep", storage=db, space={"x": Float(0, 1)})
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(isatty=lambda: True))

    def eof(_prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    code, out, _ = run_cli(["studies", "delete", "keep", "--storage", str(db)], capsys)
    assert code == 1
    assert "not deleted" in out


def test_export_to_stdout(tmp_path, capsys):
    db = tmp_path / "s.db"
    _study_with_a_reused_result(db)
    code, out, err = run_cli(["studies", "export", "dup", "--storage", str(db), "-o", "-"], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    assert "wrote 3 trials to stdout" in err
    args = ["studies", "export", "dup", "--storage", str(db), "-o", "-", "--format", "json"]
    code, out, _ = run_cli(args, capsys)
    assert len(json.loads(out)["trials"]) == 3


def test_export_does_not_overwrite_without_force(tmp_path, capsys):
    db = tmp_path / "s.db"
    _study_with_a_reused_result(db)
    target = tmp_path / "trials.csv"
    target.write_text("precious")
    args = ["studies", "export", "dup", "--storage", str(db), "-o", str(target)]
    code, _, err = run_cli(args, capsys)
    assert code == 1
    assert "exists; pass --force to overwrite it" in err
    assert target.read_text() == "precious"
    assert main([*args, "--force"]) == 0
    assert target.read_text().startswith("number,")
    other = tmp_path / "trials.txt"
    args = ["studies", "export", "dup", "--storage", str(db), "-o", str(other)]
    assert main([*args, "--format", "json"]) == 0
    assert len(json.loads(other.read_text())["trials"]) == 3


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`airda studies export NAME -o - | head -1`: the reader leaves early; no traceback."""
    db = tmp_path / "s.db"
    study = airda.create_study("big", storage=db, space={"x": Float(0, 1)}, seed=0)
    study.optimize(lambda t: t["x"], n_trials=200)
    command = ["studies", "export", "big", "-o", "-", "--storage", str(db)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "airda.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    proc.stdout.close()  # the reader is gone before the first write
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert "Exception ignored" not in err


# ---- CLI words in errors ------------------------------------------------------------------------


def test_compare_errors_name_the_flags(tmp_path, capsys):
    a = write(tmp_path, "1\n2\n3\n4\n", "a.txt")
    b = write(tmp_path, "1\n2\n3\n", "b.txt")
    nan = write(tmp_path, "1\nnan\n3\n4\n", "n.txt")
    code, _, err = run_cli(["eval", "compare", str(a), str(b)], capsys)
    assert code == 1
    assert "pass --unpaired for independent samples" in err
    assert "paired=False" not in err
    code, _, err = run_cli(["eval", "compare", str(nan), str(a)], capsys)
    assert "pass --omit-nan to exclude them" in err
    assert "nan_policy" not in err
    code, _, err = run_cli(
        ["eval", "compare", str(a), str(b), "--unpaired", "--test", "sign"], capsys
    )
    assert "--test sign needs paired scores" in err
    code, _, err = run_cli(["eval", "compare", str(a), str(a), "--resamples", "0"], capsys)
    assert "--resamples must be >= 1" in err
    code, _, err = run_cli(["eval", "compare", str(a), str(a), "--alpha", "2"], capsys)
    assert "--alpha must be in (0, 1)" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers must be >= 1, got 0"),
        (["--n-trials", "-3"], "--n-trials must be >= 0, got -3"),
        (["--timeout", "0"], "--timeout must be > 0 seconds"),
    ],
)
def test_run_errors_name_the_flags(tmp_path, capsys, flags, message):
    path = write(tmp_path, CONFIG)
    code, _, err = run_cli(["run", str(path), "--storage", str(tmp_path / "s.db"), *flags], capsys)
    assert code == 1
    assert message in err


# ---- airda info ---------------------------------------------------------------------------------


class _NoDriver:
    """The compiled module as it answers on a machine with CUDA built in and no driver."""

    def build_info(self):
        return {"cuda_built": True, "cuda_architectures": "80,90", "cuda_runtime_version": 13000}

    def cuda_driver_version(self):
        return 0

    def cuda_device_count(self):
        raise RuntimeError(
            "cudaGetDeviceCount: cudaErrorInsufficientDriver (CUDA driver version "
            "is insufficient for CUDA runtime version)"
        )


def test_info_says_no_nvidia_driver():
    from airda.cli import info

    cuda = info._cuda_report(_NoDriver())
    assert cuda["error"].startswith("no NVIDIA driver")
    report = {
        "airda": "0",
        "python": "3",
        "platform": "linux",
        "packages": {},
        "compiled": {"path": "_C.so", "compiler": "gcc", "openmp": 1, "omp_threads": 2},
        "cuda": cuda,
        "triton_mode": "-",
        "backends": {"cpu": "usable"},
        "ops": {"op": {"cpu": True}},
    }
    assert "static cudart; no NVIDIA driver" in info._format(report)


def test_info_on_this_machine(capsys):
    from airda._native import native, native_error

    if native_error() is not None or not native().build_info()["cuda_built"]:
        pytest.skip("the compiled module has no CUDA build here")
    if native().cuda_driver_version():
        pytest.skip("this machine has an NVIDIA driver")
    code, out, _ = run_cli(["info"], capsys)
    assert code == 0
    assert "cuda       unavailable: built, but no NVIDIA driver is installed here" in out
    assert "InsufficientDriver" not in out


# ---- verbosity, the per-trial line and progress -----------------------------------------------


def test_verbosity_api_and_environment(monkeypatch):
    assert alog.get_verbosity() == alog.INFO
    with alog.verbosity("warning"):
        assert alog.get_verbosity() == alog.WARNING
        assert os.environ[alog.ENV_VERBOSITY] == "WARNING"  # inherited by worker processes
    assert alog.get_verbosity() == alog.INFO
    assert os.environ[alog.ENV_VERBOSITY] == "INFO"  # as it was before the block
    with pytest.raises(ValueError, match="unknown verbosity 'loud'"):
        alog.set_verbosity("loud")


@pytest.mark.parametrize(
    ("args", "level"),
    [
        ([], logging.INFO),
        (["-q"], logging.WARNING),
        (["-qq"], logging.ERROR),
        (["-v"], logging.DEBUG),
        (["--verbosity", "error"], logging.ERROR),
    ],
)
def test_verbosity_flags_before_or_after_the_command(tmp_path, monkeypatch, args, level):
    seen = []
    monkeypatch.setattr(
        "airda.cli.studies.run_list", lambda _s: seen.append(alog.get_verbosity()) or 0
    )
    db = str(tmp_path / "s.db")
    assert main([*args, "studies", "list", "--storage", db]) == 0
    assert main(["studies", "list", "--storage", db, *args]) == 0
    assert seen == [level, level]
    assert alog.get_verbosity() == logging.INFO  # restored after the command


def _trial(number, value, params, state="complete", **attrs):
    return FrozenTrial(
        number=number,
        values=None if value is None else (value,),
        params=params,
        state=airda.TrialState(state),
        system_attrs=attrs,
        intermediate={3: 0.5} if state == "pruned" else {},
    )


def test_log_trial_finished_reads_like_optuna(capsys):
    study = airda.create_study(space={"x": Float(0, 1)}, direction="maximize", seed=0)
    study.optimize(lambda t: t["x"], n_trials=3)
    capsys.readouterr()
    for t in study.trials:
        alog.log_trial_finished(study, t)
    err = capsys.readouterr().err.splitlines()
    best = study.best_trial
    assert len(err) == 3
    assert err[0].startswith("[I ")
    t2 = study.trials[2]
    assert err[2].endswith(
        f"] trial 2 finished with value: {t2.value!r} and parameters: {t2.params!r}. "
        f"Best is trial {best.number} with value: {best.value!r}."
    )
    alog.log_trial_finished(study, _trial(3, best.value, best.params, cached_from=best.number))
    alog.log_trial_finished(study, _trial(4, None, {"x": 0.1}, state="pruned"))
    alog.log_trial_finished(study, _trial(5, None, {"x": 0.1}, state="fail"))
    err = capsys.readouterr().err
    assert f"trial 3 reused the result of trial {best.number} (same parameters): value:" in err
    assert "trial 4 pruned at step 3 with value: 0.5." in err
    assert "trial 5" not in err  # failures are the study's warning, with the error
    with alog.verbosity(alog.WARNING):
        alog.log_trial_finished(study, study.trials[0])
    assert capsys.readouterr().err == ""


def test_log_trial_finished_keeps_the_best_without_rescanning(monkeypatch, capsys):
    study = airda.create_study(space={"x": Float(0, 1)}, seed=0)
    study.optimize(lambda t: t["x"], n_trials=2)
    for t in study.trials:
        alog.log_trial_finished(study, t)
    # The next trial in sequence is folded in: the study is not read again.
    monkeypatch.setattr(type(study), "trials", property(lambda s: pytest.fail("rescanned")))
    alog.log_trial_finished(study, _trial(2, -1.0, {"x": 0.0}))
    monkeypatch.undo()
    assert "Best is trial 2 with value: -1.0." in capsys.readouterr().err


def test_log_trial_finished_multi_objective(capsys):
    study = airda.create_study(space={"x": Float(0, 1)}, directions=["minimize", "maximize"])
    trial = dataclasses.replace(_trial(0, 1.0, {"x": 0.5}), values=(1.0, 2.0))
    alog.log_trial_finished(study, trial)
    assert "trial 0 finished with values: [1.0, 2.0] and parameters: {'x': 0.5}." in (
        capsys.readouterr().err
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_off_a_terminal_logs_rate_and_eta(capsys):
    clock = _Clock()
    bar = alog.Progress(10, desc="scoring", unit="arch", stream=io.StringIO(), clock=clock)
    assert not bar.terminal
    clock.now = 1.0
    bar.update(1)
    assert capsys.readouterr().err == ""  # not before the interval
    clock.now = 40.0
    bar.update(3, best=0.25)
    err = capsys.readouterr().err
    assert "scoring: 4/10 archs (40%), 10 s/arch, elapsed 0:40, ETA 1:00, best=0.25" in err
    clock.now = 50.0
    bar.update(6)
    bar.close()
    bar.close()
    err = capsys.readouterr().err
    assert err.count("(done)") == 1
    assert "10/10 archs (100%), 5 s/arch, elapsed 0:50, best=0.25 (done)" in err


def test_progress_interval_from_the_environment(monkeypatch, capsys):
    monkeypatch.setenv(alog.ENV_PROGRESS_INTERVAL, "0")
    clock = _Clock()
    bar = alog.Progress(None, desc="job", unit="step", stream=io.StringIO(), clock=clock)
    clock.now = 0.5
    bar.update(2)
    assert "job: 2 steps, 4 steps/s, elapsed 0:00" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_draws_a_bar_with_rate_and_eta(capsys):
    pytest.importorskip("tqdm")
    screen = _Terminal()
    with alog.Progress(4, desc="tuning", unit="variant", stream=screen) as bar:
        assert bar.terminal
        bar.update(2, last="1.2 ms")
        alog.get_logger().info("a line beside the bar")
        bar.update(2)
    text = screen.getvalue()
    assert "tuning" in text
    assert "4/4" in text
    assert "variant/s" in text
    assert "last=1.2 ms" in text
    assert "a line beside the bar" in capsys.readouterr().err + text


def test_quiet_means_no_progress(capsys):
    with alog.verbosity(alog.WARNING):
        bar = alog.Progress(3, stream=_Terminal(), log_interval=0)
        bar.update(3)
        bar.close()
    assert not bar.terminal
    assert capsys.readouterr().err == ""


def test_run_logs_progress_off_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(alog.ENV_PROGRESS_INTERVAL, "0")
    path = write(tmp_path, CONFIG)
    code, _, err = run_cli(["run", str(path), "--storage", str(tmp_path / "s.db")], capsys)
    assert code == 0
    assert "cfg: 4/4 trials (100%)" in err
    assert "best=" in err
    code, _, err = run_cli(["-q", "run", str(path), "--storage", str(tmp_path / "s.db")], capsys)
    assert "trials (" not in err


def test_run_logs_each_finished_trial(tmp_path, capsys):
    path = write(tmp_path, CONFIG)
    code, _, err = run_cli(["run", str(path), "--storage", str(tmp_path / "s.db")], capsys)
    assert code == 0
    assert "trial 0 finished with value: " in err
    assert "trial 3 finished with value: " in err
    assert "Best is trial " in err
    code, _, err = run_cli(["run", str(path), "--storage", str(tmp_path / "s.db"), "-q"], capsys)
    assert "finished with value" not in err


def test_nas_score_logs_progress_off_a_terminal(monkeypatch, capsys):
    pytest.importorskip("torch")
    monkeypatch.setenv(alog.ENV_PROGRESS_INTERVAL, "0")
    code, _, err = run_cli(["nas", "score", "--n", "2", "--proxies", "params"], capsys)
    assert code == 0
    assert "scoring with params: 1/2 archs (50%)" in err
    assert "ETA" in err


def test_nas_search_logs_progress_off_a_terminal(monkeypatch, capsys):
    from tests.nas.shared_data import shared_data_file

    monkeypatch.setenv(alog.ENV_PROGRESS_INTERVAL, "0")
    table = shared_data_file("nasbench201", "nb201_12epoch.csv")
    args = ["nas", "search", "--benchmark", str(table), "--budget", "10", "--seeds", "2"]
    code, _, err = run_cli(args, capsys)
    assert code == 0
    assert "default on cifar10-val: 1/2 seeds (50%)" in err
    assert "cifar10-val=" in err


# ---- a NAS search without a table ---------------------------------------------------------------
def test_nas_search_without_a_table_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AIRDA_CACHE", str(tmp_path / "empty-cache"))
    assert main(["nas", "search", "--budget", "5"]) != 0
    err = capsys.readouterr().err
    assert "airda nas download nb201" in err
    assert main(["nas", "search", "--benchmark", str(tmp_path / "absent.csv")]) != 0
    assert "airda nas download nb201" in capsys.readouterr().err


def test_nas_download_then_search_finds_the_cached_table(tmp_path, monkeypatch, capsys):
    from tests.nas.shared_data import shared_data_file

    table = shared_data_file("nasbench201", "nb201_12epoch.csv")
    monkeypatch.setenv("AIRDA_CACHE", str(tmp_path / "cache"))
    assert main(["nas", "download", "nb201", "--from", str(table)]) == 0
    assert "sha256 verified" in capsys.readouterr().out
    assert main(["nas", "search", "--budget", "10", "--seeds", "1"]) == 0
    assert "cifar10-val" in capsys.readouterr().out
