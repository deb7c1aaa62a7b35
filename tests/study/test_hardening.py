"""Studies under attack: a second handle in one process, dead workers, odd objective results,
load_if_exists with other settings, worker processes whose parent dies. Each test failed
before its fix (the storage's own cases are in tests/storage/test_sqlite.py)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import airda
from airda.space import Float
from airda.storage import get_storage
from airda.trial import TrialState
from tests import objectives

SPACE = {"x": Float(-3.0, 3.0)}


def _python(code: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _count_elsewhere(path) -> int:
    out = _python(
        f"""
        import airda
        print(len(airda.load_study("s", storage={str(path)!r}).trials))
        """
    )
    return int(out.stdout.strip())


@pytest.mark.parametrize("reopen", ["load_study", "create_study", "get_storage"])
def test_a_second_handle_in_one_process_loses_no_write(tmp_path, reopen):
    # The reproducer: the header check of a second handle used to open() and close()
    # the file, which dropped the first connection's POSIX locks; another process then
    # checkpointed and deleted the WAL the first one still wrote to.
    path = tmp_path / "s.db"
    first = airda.create_study("s", storage=path, space=SPACE, seed=0)
    first.optimize(objectives.quadratic, n_trials=5)
    if reopen == "load_study":
        airda.load_study("s", storage=path)
    elif reopen == "create_study":
        airda.create_study("s", storage=path, space=SPACE, load_if_exists=True)
    else:
        get_storage(path)
    _python(
        f"""
        import airda
        from tests import objectives
        s = airda.load_study("s", storage={str(path)!r})
        s.optimize(objectives.quadratic, n_trials=5)
        """
    )
    first.optimize(objectives.quadratic, n_trials=5)
    assert len(first.trials) == 15
    assert _count_elsewhere(path) == 15
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()


def test_many_handles_and_processes_interleaved(tmp_path):
    path = tmp_path / "s.db"
    first = airda.create_study("s", storage=path, space=SPACE, seed=0)
    for round_ in range(3):
        airda.load_study("s", storage=path)  # a new handle each round
        _python(
            f"""
            import airda
            from tests import objectives
            airda.load_study("s", storage={str(path)!r}).optimize(objectives.quadratic, n_trials=3)
            """
        )
        first.optimize(objectives.quadratic, n_trials=2)
        assert _count_elsewhere(path) == 5 * (round_ + 1)


def test_load_study_fails_the_running_trials_of_dead_workers(tmp_path):
    path = tmp_path / "s.db"
    airda.create_study("s", storage=path, space=SPACE)
    _python(
        f"""
        import os, airda
        s = airda.load_study("s", storage={str(path)!r})
        s.ask()
        s.ask()
        os._exit(0)  # dies holding two running trials
        """
    )
    study = airda.load_study("s", storage=path)
    states = [t.state for t in study.trials]
    assert states == [TrialState.FAIL, TrialState.FAIL]
    assert all("WorkerDied" in t.error for t in study.trials)


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
def test_a_failing_report_leaves_nothing_half_updated(tmp_path, storage):
    where = None if storage == "memory" else tmp_path / "s.db"
    study = airda.create_study("s", storage=where, space=SPACE)
    trial = study.ask()
    trial.report(0, 1.0)
    for step, value in [(1, float("nan")), (-1, 2.0), ("x", 2.0), (1, "abc")]:
        with pytest.raises((ValueError, TypeError)):
            trial.report(step, value)
    assert trial.intermediate == {0: 1.0}
    assert study.trials[0].intermediate == {0: 1.0}


@pytest.mark.parametrize("result", ["1.5", True, 10**400, b"1", None, [1.0, 2.0], object()])
def test_odd_objective_results_fail_the_trial_with_the_reason(result, tmp_path):
    study = airda.create_study("s", storage=tmp_path / "s.db", space=SPACE)
    study.optimize(lambda t: result, n_trials=2)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL]
    assert all(t.error for t in trials)
    assert not study.storage.running_trials(study.study_id)


def test_no_exception_escapes_optimize_leaving_a_trial_running(tmp_path):
    class Weird(BaseException):
        pass

    def objective(t):
        raise Weird("boom")

    study = airda.create_study("s", storage=tmp_path / "s.db", space=SPACE)
    with pytest.raises(Weird):
        study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.FAIL]


# ---- load_if_exists with other settings -------------------------------------------------------
def test_load_if_exists_with_a_different_space_names_the_difference(tmp_path):
    path = tmp_path / "s.db"
    airda.create_study("s", storage=path, space={"x": Float(0, 1)})
    with pytest.raises(ValueError, match=r"'x' is .*0\.1"):
        airda.create_study("s", storage=path, space={"x": Float(0, 0.1)}, load_if_exists=True)
    with pytest.raises(ValueError, match="y"):
        airda.create_study(
            "s", storage=path, space={"x": Float(0, 1), "y": Float(0, 1)}, load_if_exists=True
        )
    with pytest.raises(ValueError, match="maximize"):
        airda.create_study(
            "s", storage=path, space={"x": Float(0, 1)}, direction="maximize", load_if_exists=True
        )
    with pytest.raises(ValueError, match="objective"):
        airda.create_study(
            "s",
            storage=path,
            space={"x": Float(0, 1)},
            directions=["minimize", "minimize"],
            load_if_exists=True,
        )
    # The same settings (or none given) load the study.
    airda.create_study("s", storage=path, space={"x": Float(0, 1)}, load_if_exists=True)
    airda.create_study("s", storage=path, load_if_exists=True)


# ---- worker processes die with their parent ----------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_worker_processes_die_with_their_parent(tmp_path, sig):
    path = tmp_path / "s.db"
    airda.create_study("s", storage=path, space=SPACE)
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import airda; from tests import objectives; "
            f"airda.load_study('s', storage={str(path)!r}).optimize("
            "objectives.slow_quadratic, n_trials=100000, n_workers=2)",
        ],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    storage = get_storage(path)
    study = airda.load_study("s", storage=storage)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while len(workers) < 2 and time.monotonic() < deadline:
        workers = {int(t.worker.rpartition(":")[2]) for t in study.trials}
        time.sleep(0.05)  # polling another process, not pacing the code under test
    assert len(workers) == 2, "the workers never started"
    parent.send_signal(sig)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _alive(pid)], "workers outlived their parent"
    n = len(study.trials)
    time.sleep(0.3)
    assert len(study.trials) == n  # nobody writes any more
    # Nothing is left running once a study is loaded again.
    again = airda.load_study("s", storage=path)
    assert not again.get_trials([TrialState.RUNNING])
    if sig == signal.SIGTERM:
        stopped = [t for t in again.trials if t.error and "WorkerTerminated" in t.error]
        assert stopped, "a worker told to stop records its trial as failed"


def test_an_objective_from_an_interactive_session_is_refused_for_worker_processes(tmp_path):
    # `python -c` has a __main__ without a file: workers could not import the objective.
    out = _python(
        f"""
        import airda
        from airda.space import Float
        def objective(t):
            return t["x"]
        s = airda.create_study(storage={str(tmp_path / "s.db")!r}, space={{"x": Float(0, 1)}})
        try:
            s.optimize(objective, n_trials=4, n_workers=2)
        except TypeError as exc:
            print("REFUSED", exc)
        print(len(s.trials))
        """
    )
    assert "REFUSED" in out.stdout
    assert "interactive session" in out.stdout
    assert out.stdout.strip().endswith("0")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_exited_but_unreaped_worker_counts_as_dead():
    # An orphaned worker that exited stays a zombie until its new parent reaps it; its
    # running trials are those of a dead worker.
    import socket

    from airda.storage.base import worker_is_dead

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while _alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # polling another process: it exits, unreaped
    assert os.path.exists(f"/proc/{child.pid}"), "the zombie was reaped before the check"
    worker = f"{socket.gethostname()}:{child.pid}"
    assert worker_is_dead(worker, None, 60.0, time.time())
    child.wait()
    assert worker_is_dead(worker, None, 60.0, time.time())
    assert not worker_is_dead(f"{socket.gethostname()}:{os.getpid()}", None, 60.0, time.time())
