"""Several worker processes on one SQLite study: nothing lost, nothing duplicated, crashes
recovered, foreign files refused."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import subprocess
import sys
import textwrap

import pytest

import airda
from airda.space import Float
from airda.storage import StorageError, get_storage
from airda.trial import TrialState
from tests import objectives

SPACE = {"x": Float(-3.0, 3.0)}


def _independent_worker(path: str, seed: int) -> None:
    study = airda.create_study("shared", storage=path, space=SPACE, seed=seed, load_if_exists=True)
    study.optimize(objectives.quadratic, n_trials=50)


def test_four_processes_fifty_trials_each(tmp_path):
    path = str(tmp_path / "shared.db")
    airda.create_study("shared", storage=path, space=SPACE)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_independent_worker, args=(path, seed)) for seed in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    trials = airda.load_study("shared", storage=path).trials
    assert len(trials) == 200
    assert sorted(t.number for t in trials) == list(range(200))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.trial_id for t in trials}) == 200
    assert len({t.worker for t in trials}) == 4


def test_n_workers_shares_one_budget(tmp_path):
    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=0)
    study.optimize(objectives.quadratic, n_trials=40, n_workers=3)
    trials = study.trials
    assert len(trials) == 40
    assert all(t.state is TrialState.COMPLETE for t in trials)
    # Workers draw from distinct random streams: no two propose the same point.
    assert len({t.params["x"] for t in trials}) == 40


def test_killed_worker_is_recovered_on_resume(tmp_path, monkeypatch):
    path = tmp_path / "crash.db"
    marker = tmp_path / "killed"
    monkeypatch.setenv("AIRDA_TEST_MARKER", str(marker))
    study = airda.create_study("crash", storage=path, space=SPACE, seed=0)
    with pytest.raises(RuntimeError, match="died"):
        study.optimize(
            objectives.kill_self_on_trial_3, n_trials=10, n_workers=1, executor="process"
        )
    assert marker.exists()
    resumed = airda.load_study("crash", storage=path)
    trials = resumed.trials
    by_state = {s: [t.number for t in trials if t.state is s] for s in TrialState}
    assert by_state[TrialState.COMPLETE] == [0, 1, 2]
    assert by_state[TrialState.FAIL] == [3]
    assert "WorkerDied" in trials[3].error
    resumed.optimize(objectives.kill_self_on_trial_3, n_trials=10 - len(trials))
    final = resumed.trials
    assert len(final) == 10
    assert [t.number for t in final if t.state is TrialState.COMPLETE] == [0, 1, 2, *range(4, 10)]


def test_serial_process_killed_mid_trial_then_resumed(tmp_path):
    path = tmp_path / "serial.db"
    script = textwrap.dedent(f"""
        import os, signal, airda
        from airda.space import Float
        study = airda.create_study("s", storage={str(path)!r}, space={{"x": Float(0, 1)}}, seed=1)
        def objective(trial):
            if trial.number == 5:
                os.kill(os.getpid(), signal.SIGKILL)
            return trial["x"]
        study.optimize(objective, n_trials=20)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    study = airda.load_study("s", storage=path)
    study.fail_stale_trials()
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5 + [TrialState.FAIL]
    study.optimize(lambda t: t["x"], n_trials=14)
    assert len(study.trials) == 20


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello, this is a text file\n" * 10, "not an SQLite database"),
        (
            b"SQLite format 3\x00" + b"\x00" * 200,
            "damaged|not a readable SQLite database|not an airda",
        ),
    ],
)
def test_corrupt_or_foreign_files_are_refused_untouched(tmp_path, content, message):
    path = tmp_path / "foreign.db"
    path.write_bytes(content)
    with pytest.raises(StorageError, match=message):
        get_storage(path)
    assert path.read_bytes() == content
    assert not (tmp_path / "foreign.db-wal").exists()


def test_other_sqlite_databases_are_refused_untouched(tmp_path):
    path = tmp_path / "app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(StorageError, match="something else"):
        airda.create_study(storage=path, space=SPACE)
    assert path.read_bytes() == before


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.db"
    get_storage(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value='999' WHERE key='version'")
    con.commit()
    con.close()
    with pytest.raises(StorageError, match="newer than this airda"):
        get_storage(path)


def test_in_memory_study_cannot_use_worker_processes():
    study = airda.create_study(space=SPACE)
    with pytest.raises(ValueError, match="in-memory"):
        study.optimize(objectives.quadratic, n_trials=4, n_workers=2)


def test_process_workers_need_a_picklable_objective(tmp_path):
    study = airda.create_study(storage=tmp_path / "p.db", space=SPACE)
    with pytest.raises(TypeError, match="picklable"):
        study.optimize(lambda t: t["x"], n_trials=4, n_workers=2)


def test_thread_workers_with_in_memory_storage():
    study = airda.create_study(space=SPACE, seed=3)
    study.optimize(objectives.quadratic, n_trials=30, n_workers=3, executor="thread")
    assert len(study.trials) == 30
    assert all(t.state is TrialState.COMPLETE for t in study.trials)


def test_executors_by_name():
    from airda.study import ProcessExecutor, RayExecutor, SerialExecutor, ThreadExecutor
    from airda.study._executor import get_executor

    assert isinstance(get_executor(None), SerialExecutor)
    assert isinstance(get_executor(None, 3), ProcessExecutor)
    assert isinstance(get_executor("thread", 2), ThreadExecutor)
    ray = get_executor("ray", 4)  # Ray itself is imported only when it runs
    assert isinstance(ray, RayExecutor)
    assert ray.max_concurrent == 4
    assert get_executor("ray").max_concurrent is None
    with pytest.raises(ValueError, match="'serial', 'thread', 'process' or 'ray'"):
        get_executor("dask")
    with pytest.raises(ValueError, match="n_workers must be an int >= 1"):
        get_executor("thread", 0)
