"""``airda worker``: several worker commands on one study (an SQLite file; PostgreSQL where a
throwaway server can be started) stop at exactly the study's total, with consecutive numbers
and no duplicate; a worker killed by SIGKILL mid-trial and restarted loses nothing; SIGTERM
records the running trial failed and exits 143; bad studies and servers are one-line errors."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import airda
from airda.trial import TrialState

ROOT = Path(__file__).resolve().parents[2]


def slow(trial):
    """A trial that takes long enough for a worker to be stopped in the middle of it."""
    time.sleep(0.15)
    return (trial["x"] - 1.0) ** 2


def quick(trial):
    return (trial["x"] - 1.0) ** 2


def _config(tmp_path: Path, function: str, n_trials: int, name: str = "shared") -> Path:
    path = tmp_path / "study.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [study]
            name = "{name}"
            direction = "minimize"
            seed = 0
            [objective]
            function = "tests.cli.test_worker:{function}"
            [budget]
            n_trials = {n_trials}
            [space]
            x = {{ type = "float", low = -3.0, high = 3.0 }}
            """
        )
    )
    return path


def _worker(config: Path, storage: str, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airda.cli",
            "-q",
            "worker",
            str(config),
            "--storage",
            storage,
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _check_exact(trials, total: int) -> None:
    assert [t.number for t in trials] == list(range(total))
    assert len({t.trial_id for t in trials}) == total
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len({t.params["x"] for t in done}) == len(done)  # no candidate run twice


@pytest.fixture
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (the postgres extra)")
    from airda.testing import _postgres

    try:
        base = _postgres.shared_server_url()
    except _postgres.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    yield url
    store = airda.storage.get_storage(url)
    _postgres.drop_schema(store)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_workers_share_an_exact_total(tmp_path, backend, request):
    url = (
        str(tmp_path / "shared.db")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    config = _config(tmp_path, "quick", 45)
    procs = [
        _worker(config, url),
        _worker(config, url, "--study", "shared"),
        _worker(config, url, "--workers", "2"),
    ]
    results = [_finish(p) for p in procs]
    assert [r[0] for r in results] == [0, 0, 0], results
    assert all("the study holds 45 of 45" in out for _, out, _ in results), results
    trials = airda.load_study("shared", storage=url).trials
    _check_exact(trials, 45)
    assert all(t.state is TrialState.COMPLETE for t in trials)
    # A later worker with a larger total continues the same study.
    code, out, _ = _finish(_worker(config, url, "--max-trials", "50"))
    assert code == 0
    assert "joined study 'shared'" in out
    _check_exact(airda.load_study("shared", storage=url).trials, 50)


def _wait_running(url: str, worker_pid: int, deadline: float = 30.0):
    """The running trial of the worker process `worker_pid`, once it has one."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            study = airda.load_study("shared", storage=url)
        except KeyError:  # not created yet
            time.sleep(0.05)
            continue
        for t in study.get_trials([TrialState.RUNNING]):
            if t.worker.endswith(f":{worker_pid}") and len(study.trials) >= 3:
                return t
        time.sleep(0.02)
    raise AssertionError("the worker never started a trial")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkilled_worker_restarted_loses_nothing(tmp_path, backend, request):
    url = (
        str(tmp_path / "shared.db")
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    config = _config(tmp_path, "slow", 16)
    victim = _worker(config, url)
    other = _worker(config, url)
    running = _wait_running(url, victim.pid)
    victim.send_signal(signal.SIGKILL)
    assert _finish(victim)[0] == -signal.SIGKILL
    code, _, err = _finish(_worker(config, url))  # the restart
    assert code == 0, err
    assert _finish(other)[0] == 0
    trials = airda.load_study("shared", storage=url).trials
    _check_exact(trials, 16)
    killed = trials[running.number]
    failed = [t for t in trials if t.state is TrialState.FAIL]
    if killed.state is TrialState.FAIL:  # killed mid-trial (it finished first: nothing to fail)
        assert failed == [killed]
        assert "WorkerDied" in killed.error
    assert all(t.state is TrialState.COMPLETE for t in trials if t not in failed)


def test_sigterm_fails_the_running_trial_and_exits_143(tmp_path):
    url = str(tmp_path / "shared.db")
    config = _config(tmp_path, "slow", 1000)
    proc = _worker(config, url)
    running = _wait_running(url, proc.pid)
    proc.send_signal(signal.SIGTERM)
    code, _, err = _finish(proc)
    assert code == 143
    assert "stopped by SIGTERM" in err
    assert "Traceback" not in err
    trial = airda.load_study("shared", storage=url).trials[running.number]
    assert trial.state in (TrialState.FAIL, TrialState.COMPLETE)
    if trial.state is TrialState.FAIL:
        assert "WorkerTerminated" in trial.error
    assert not airda.load_study("shared", storage=url).get_trials([TrialState.RUNNING])


def test_unknown_study_without_a_space_is_one_line(tmp_path):
    url = str(tmp_path / "shared.db")
    airda.create_study("sweep", storage=url)
    config = tmp_path / "dbr.toml"
    config.write_text(
        '[objective]\nfunction = "tests.cli.test_worker:quick"\n[budget]\nn_trials = 3\n'
    )
    code, _, err = _finish(_worker(config, url, "--study", "swep"))
    assert code == 2
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert "no study 'swep'" in err
    assert "did you mean 'sweep'" in err
    assert "[space]" in err
    code, _, err = _finish(_worker(config, url))
    assert code == 2
    assert "--study NAME" in err


def test_unreachable_server_is_one_line(tmp_path):
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (the postgres extra)")
    config = _config(tmp_path, "quick", 3)
    code, _, err = _finish(
        _worker(config, "postgresql://airda@127.0.0.1:1/studies?connect_timeout=2")
    )
    assert code == 2
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert "cannot open the storage" in err
    assert "127.0.0.1:1" in err


def test_no_total_is_refused(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(
        '[study]\nname = "s"\n[objective]\nfunction = "tests.cli.test_worker:quick"\n'
        '[space]\nx = { type = "float", low = 0.0, high = 1.0 }\n'
    )
    code, _, err = _finish(_worker(config, str(tmp_path / "s.db")))
    assert code == 2
    assert "--max-trials" in err


def test_copy_from_a_laptop_study(tmp_path):
    """--copy-from puts the laptop's study, trials included, into the shared storage once; the
    copied trials count towards the total; a second --copy-from copies nothing."""
    laptop = airda.create_study(
        "shared", storage=tmp_path / "laptop.db", space={"x": airda.space.Float(-3.0, 3.0)}
    )
    laptop.optimize(quick, n_trials=5)
    config = _config(tmp_path, "quick", 12)
    url = str(tmp_path / "cluster.db")
    code, out, err = _finish(_worker(config, url, "--copy-from", str(tmp_path / "laptop.db")))
    assert code == 0, err
    assert "copied study 'shared' (5 trials)" in out
    trials = airda.load_study("shared", storage=url).trials
    _check_exact(trials, 12)
    assert [t.values for t in trials[:5]] == [t.values for t in laptop.trials]
    code, out, _ = _finish(
        _worker(config, url, "--copy-from", str(tmp_path / "laptop.db"), "--max-trials", "13")
    )
    assert code == 0
    assert "nothing copied" in out
    _check_exact(airda.load_study("shared", storage=url).trials, 13)
    code, _, err = _finish(_worker(config, str(tmp_path / "c2.db"), "--copy-from", "none.db"))
    assert code == 2
    assert "--copy-from none.db: no such file" in err


def test_sigterm_with_worker_processes(tmp_path):
    """--workers 2: SIGTERM to the worker command stops its processes, whose running trials
    are recorded failed; nothing is left running."""
    url = str(tmp_path / "shared.db")
    config = _config(tmp_path, "slow", 1000)
    proc = _worker(config, url, "--workers", "2")
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with contextlib.suppress(KeyError):
            study = airda.load_study("shared", storage=url)
            if len(study.trials) >= 4 and study.get_trials([TrialState.RUNNING]):
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    code, _, err = _finish(proc)
    assert code == 143, err
    assert "Traceback" not in err
    trials = airda.load_study("shared", storage=url).trials
    assert not [t for t in trials if t.state is TrialState.RUNNING]
    assert [t.number for t in trials] == list(range(len(trials)))
    failed = [t for t in trials if t.state is TrialState.FAIL]
    assert all("WorkerTerminated" in t.error for t in failed)
