"""`airda run` and `airda studies ...`."""

from __future__ import annotations

import json
import textwrap
import types

import pytest

import airda
from airda.cli import main
from airda.space import Float

CONFIG = textwrap.dedent("""
    [study]
    name = "cfg"
    direction = "minimize"
    strategy = "halton"
    seed = 0

    [objective]
    function = "tests.objectives:quadratic"

    [budget]
    n_trials = 12

    [space]
    x = { type = "float", low = -3.0, high = 3.0 }
""")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(CONFIG)
    return path


def test_run_then_continue_then_manage(tmp_path, config, capsys):
    db = str(tmp_path / "s.db")
    assert main(["run", str(config), "--storage", db]) == 0
    out = capsys.readouterr().out
    assert "12 trials: 12 complete" in out
    assert "best: trial" in out
    assert main(["run", str(config), "--storage", db, "--n-trials", "3"]) == 0
    assert "15 trials" in capsys.readouterr().out

    assert main(["studies", "list", "--storage", db]) == 0
    listing = capsys.readouterr().out
    assert "cfg" in listing
    assert "15" in listing

    assert main(["studies", "show", "cfg", "--storage", db, "--top", "2"]) == 0
    assert "top 2" in capsys.readouterr().out

    out_json = tmp_path / "cfg.json"
    assert main(["studies", "export", "cfg", "--storage", db, "-o", str(out_json)]) == 0
    assert len(json.loads(out_json.read_text())["trials"]) == 15

    assert main(["studies", "delete", "cfg", "--storage", db, "--yes"]) == 0
    assert main(["studies", "show", "cfg", "--storage", db]) == 1
    assert "no study named 'cfg'" in capsys.readouterr().err


def test_run_with_workers(tmp_path, config, capsys):
    db = str(tmp_path / "w.db")
    assert main(["run", str(config), "--storage", db, "--workers", "2", "--n-trials", "10"]) == 0
    assert len(airda.load_study("cfg", storage=db).trials) == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[study]\nname = 'x'\n[objective]\n", "function = 'module:function' is required"),
        ("[objective]\nfunction = 'nowhere.module:f'\n", "cannot import 'nowhere.module'"),
        ("[objective]\nfunction = 'json:nothing'\n", "has no attribute 'nothing'"),
        ("[objective]\nfunction = 'no-colon'\n", "must look like"),
        ("[objectiv]\nfunction = 'a:b'\n", "unknown section"),
        ("this is = not toml [", "not valid TOML"),
    ],
)
def test_bad_configs_exit_1_with_a_message(tmp_path, text, message, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["run", str(path), "--storage", str(tmp_path / "x.db")]) == 1
    assert message in capsys.readouterr().err


def test_missing_storage_file_is_an_error_not_a_new_file(tmp_path, capsys):
    db = tmp_path / "absent.db"
    assert main(["studies", "list", "--storage", str(db)]) == 1
    assert "no storage file" in capsys.readouterr().err
    assert not db.exists()


def test_delete_asks_for_confirmation(tmp_path, monkeypatch, capsys):
    db = tmp_path / "d.db"
    airda.create_study("keep", storage=db, space={"x": Float(0, 1)})
    monkeypatch.setattr("sys.stdin", types.SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    assert main(["studies", "delete", "keep", "--storage", str(db)]) == 1
    assert "not deleted" in capsys.readouterr().out
    assert airda.load_study("keep", storage=db).name == "keep"
    monkeypatch.setattr("builtins.input", lambda _prompt: "y")
    assert main(["studies", "delete", "keep", "--storage", str(db)]) == 0
    assert "deleted study 'keep'" in capsys.readouterr().out


def test_studies_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["studies", "--help"])
    assert exc.value.code == 0
    assert "export" in capsys.readouterr().out


@pytest.mark.parametrize("strategy", ["tpe", "cmaes"])
def test_the_hpo_example_config_runs_with_the_new_samplers(tmp_path, strategy, capsys):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "examples" / "hpo_tpe.toml").read_text()
    path = tmp_path / "hpo.toml"
    path.write_text(text.replace('strategy = "tpe"', f'strategy = "{strategy}"'))
    if strategy != "tpe":  # the options section is TPE's
        path.write_text(path.read_text().replace("n_startup_trials = 10", ""))
    db = str(tmp_path / "s.db")
    assert main(["run", str(path), "--storage", db, "--n-trials", "30"]) == 0
    study = airda.load_study("hpo-tpe-hartmann6", storage=db)
    assert len(study.trials) == 30
    assert study.best_value < -1.0  # a real search: random points average about -0.26


def _example(name: str):
    from pathlib import Path

    return (Path(__file__).resolve().parents[2] / "examples" / name).read_text()


@pytest.mark.parametrize(
    "table",
    [
        'name = "asha"\nmin_resource = 1\nmax_resource = 27\nreduction_factor = 3',
        'name = "hyperband"\nmax_resource = 27',
        'name = "successive_halving"\nmax_resource = 27\nn_trials_per_bracket = 9',
        'name = "median"\nn_startup_trials = 3',
    ],
)
def test_run_with_a_scheduler_table(tmp_path, table, capsys):
    """[scheduler] in the TOML builds the scheduler; the example objective reports epochs, so
    trials are stopped early and the study spends fewer epochs than 27 per trial."""
    text = _example("hpo_asha.toml")
    start = text.index("[scheduler]")
    end = text.index("[objective]")
    path = tmp_path / "sched.toml"
    path.write_text(text[:start] + "[scheduler]\n" + table + "\n\n" + text[end:])
    db = str(tmp_path / "s.db")
    assert main(["run", str(path), "--storage", db, "--n-trials", "30"]) == 0
    assert "more with tpe and " in capsys.readouterr().out
    study = airda.load_study("hpo-asha-hartmann6", storage=db)
    assert len(study.trials) == 30
    assert any(t.state is airda.TrialState.PRUNED for t in study.trials)
    assert sum(max(t.intermediate) for t in study.trials) < 27 * 30
    # the study goes on with the same scheduler from the same file
    assert main(["run", str(path), "--storage", db, "--n-trials", "5"]) == 0
    assert len(airda.load_study("hpo-asha-hartmann6", storage=db).trials) == 35


def test_the_asha_example_config_runs(tmp_path, capsys):
    path = tmp_path / "asha.toml"
    path.write_text(_example("hpo_asha.toml"))
    db = str(tmp_path / "s.db")
    assert main(["run", str(path), "--storage", db, "--n-trials", "40"]) == 0
    assert "ASHA(min_resource=1, max_resource=27, reduction_factor=3)" in capsys.readouterr().out
    study = airda.load_study("hpo-asha-hartmann6", storage=db)
    epochs = sum(max(t.intermediate) for t in study.trials)
    assert epochs < 40 * 27 / 2  # most trials stop early
    assert study.best_value < -1.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('scheduler = "asha"', "[scheduler] must be a table"),
        ("max_resource = 27", "[scheduler] needs name = one of asha, hyperband, median"),
        ('name = "pbt"', "unknown scheduler 'pbt'; registered: asha, hyperband"),
        ('name = "asha"', "max_resource is required"),
        ('name = "asha"\nmax_resource = 27\neta = 3', "has no option 'eta'; its options: min_"),
        ('name = "asha"\nmax_resource = "27"', "option 'max_resource' must be an integer"),
        ('name = "asha"\nmax_resource = 27.0', "option 'max_resource' must be an integer"),
        ('name = "median"\ninterval = 0', "interval >= 1"),
        ('name = "asha"\nmin_resource = 9\nmax_resource = 3', "must be >= min_resource"),
    ],
)
def test_bad_scheduler_tables_exit_1_with_a_message(tmp_path, table, message, capsys):
    if table.startswith("scheduler ="):  # a key at the top level of the file
        text = table + "\n" + CONFIG
    else:
        text = CONFIG + "\n[scheduler]\n" + table
    path = tmp_path / "bad.toml"
    path.write_text(text)
    db = tmp_path / "x.db"
    assert main(["run", str(path), "--storage", str(db)]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "[scheduler]" in err
