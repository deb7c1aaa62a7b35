"""RayExecutor on a real local Ray cluster: a head and two worker nodes started with
``ray start`` as separate processes on 127.0.0.1 (a third node is started, then killed, by the
node-loss test). Trials complete and number without gaps, a failing objective is recorded,
resources decide where trials run, a killed node's trials fail with the node named and run
again, and a driver killed by SIGKILL is started again with no trial lost or run twice.

The cluster lives in a temporary folder of its own and is stopped by ending the ``ray start
--block`` processes this module started (never ``ray stop``, which would end every Ray session
of the user)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import airda
from airda.space import Float
from airda.storage import get_storage
from airda.study import RayExecutor
from airda.trial import TrialState

SPACE = {"x": Float(-3.0, 3.0)}


# ---- without a cluster -------------------------------------------------------------------


def test_in_memory_study_is_refused():
    study = airda.create_study(space=SPACE)
    with pytest.raises(ValueError, match="in-memory"):
        study.optimize(lambda t: t["x"], n_trials=2, executor=RayExecutor())


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE)
    with pytest.raises(ImportError, match=r"pip install 'airda-lab\[ray\]'"):
        study.optimize(lambda t: t["x"], n_trials=2, executor=RayExecutor())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resources_per_trial": {"cpu": 1}}, "resources_per_trial takes"),
        ({"resources_per_trial": {"num_gpus": -1}}, "must be a number >= 0"),
        ({"resources_per_trial": {"resources": {"a": "x"}}}, "resource names to amounts"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_retries": -1}, "max_retries"),
        ({"idle_timeout": 0}, "idle_timeout"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RayExecutor(**kwargs)


# ---- a real cluster ----------------------------------------------------------------------

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'airda-lab[ray]')")

# Node loss is noticed in a few seconds instead of Ray's default 30 s (the head reads these);
# not faster, or a busy machine's slow answers would pass for a dead node.
RAY_ENV = {
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "2000",
    "RAY_health_check_failure_threshold": "5",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A private cluster on 127.0.0.1: no token (Ray 2.52+ would write one to ~/.ray).
    "RAY_AUTH_MODE": "disabled",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """``ray start --block`` processes: a head and worker nodes, each with a custom resource
    named after it, so a test can send trials to one node."""

    def __init__(self) -> None:
        # Short: Ray's socket paths under it must stay within 107 characters.
        self.temp_dir = tempfile.mkdtemp(prefix="airda-ray-", dir="/tmp")
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: list = []
        self.ray = str(Path(sys.executable).with_name("ray"))

    def _start(self, name: str, args: list[str]) -> None:
        log = open(Path(self.temp_dir) / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.logs.append(log)
        resources = json.dumps({name: 1})
        self.procs[name] = subprocess.Popen(
            [self.ray, "start", "--block", "--num-cpus=1", "--disable-usage-stats",
             "--node-ip-address=127.0.0.1", "--object-store-memory=80000000",
             f"--resources={resources}", *args],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def _wait_started(self, name: str, timeout: float = 90.0) -> None:
        log = Path(self.temp_dir) / f"{name}.log"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if "Ray runtime started" in log.read_text():
                return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"ray start of {name} failed:\n{log.read_text()[-3000:]}")

    def start_head(self) -> None:
        self._start(
            "head",
            ["--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}",
             "--include-dashboard=false",],
        )  # fmt: skip
        self._wait_started("head")

    def add_node(self, name: str) -> None:
        self._start(name, [f"--address={self.address}"])
        self._wait_started(name)

    def wait_nodes(self, n: int, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while sum(node["Alive"] for node in ray.nodes()) < n:
            if time.monotonic() > end:
                raise RuntimeError(f"{n} Ray nodes did not come up: {ray.nodes()}")
            time.sleep(0.2)

    def node_id(self, name: str) -> str:
        for node in ray.nodes():
            if node["Alive"] and name in node["Resources"]:
                return node["NodeID"]
        raise KeyError(name)

    def kill_raylet(self, name: str) -> int:
        """SIGKILL the raylet of node `name` (its workers end with it)."""
        parents: dict[int, int] = {}
        names: dict[int, str] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                head, _, rest = stat.read_text().rpartition(")")
                pid = int(stat.parent.name)
                names[pid] = head.partition("(")[2]
                parents[pid] = int(rest.split()[1])
        for pid, comm in names.items():
            ancestor = parents.get(pid)
            while ancestor not in (None, 0, 1, self.procs[name].pid):
                ancestor = parents.get(ancestor)
            if comm == "raylet" and ancestor == self.procs[name].pid:
                os.kill(pid, signal.SIGKILL)
                return pid
        raise RuntimeError(f"no raylet under node {name}")

    def stop(self) -> None:
        for name in [n for n in self.procs if n != "head"] + ["head"]:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()  # `ray start --block` stops its node's processes
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for log in self.logs:
            log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)  # this process drives, and starts the restart test's drivers
    c = LocalCluster()
    try:
        c.start_head()
        c.add_node("node_a")
        c.add_node("node_b")
        ray.init(address=c.address, log_to_driver=False)
        c.wait_nodes(3)
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(autouse=True)
def _quiet():
    logger = logging.getLogger("airda")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _node_objective(seconds: float, slow_node: str = "", slow: float = 0.0):
    """An objective that records the node it ran on, then sleeps (`slow` seconds on node
    `slow_node`). A closure: Ray ships it by value, the workers need not import this module."""

    def objective(trial):
        import ray as _ray

        node = _ray.get_runtime_context().get_node_id()
        trial.set_user_attr("node", node)
        time.sleep(slow if node == slow_node else seconds)
        return (trial["x"] - 1.0) ** 2

    return objective


def test_trials_complete_and_number_without_gaps(cluster, tmp_path):
    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=0)
    study.optimize(_node_objective(0.05), n_trials=9, executor=RayExecutor())
    trials = study.trials
    assert [t.number for t in trials] == list(range(9))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert len({t.params["x"] for t in trials}) == 9
    # In actor processes (at most one per one-CPU node), not in the driver.
    assert 1 <= len({t.worker for t in trials}) <= 3
    assert all(t.worker != study.worker for t in trials)
    assert {t.user_attrs["node"] for t in trials} <= {n["NodeID"] for n in ray.nodes()}
    assert study.best_value == min(t.value for t in trials)
    # The actors end with the run: nothing holds the cluster's CPUs after it.
    _wait_for(lambda: ray.available_resources().get("CPU") == 3.0, 30)


def test_failing_objective_is_recorded_and_the_run_goes_on(cluster, tmp_path):
    def objective(trial):
        if trial.number % 3 == 1:
            raise ValueError(f"bad trial {trial.number}")
        return trial["x"]

    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=1)
    seen = []
    study.optimize(
        objective,
        n_trials=7,
        executor=RayExecutor(max_concurrent=2),
        callbacks=[lambda s, t: seen.append(t.number)],
    )
    trials = study.trials
    assert len(trials) == 7
    assert sorted(seen) == list(range(7))
    failed = [t for t in trials if t.state is TrialState.FAIL]
    assert [t.number for t in failed] == [1, 4]
    for t in failed:
        assert t.error == f"ValueError: bad trial {t.number}"
        assert "Traceback" in t.traceback
        assert "raise ValueError" in t.traceback
    assert all(t.state is TrialState.COMPLETE for t in trials if t.number % 3 != 1)


def test_exception_outside_catch_propagates_after_it_is_recorded(cluster, tmp_path):
    def objective(trial):
        raise KeyError("not caught")

    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=8)
    with pytest.raises(KeyError, match="not caught"):
        study.optimize(objective, n_trials=3, executor=RayExecutor(max_concurrent=1), catch=())
    (trial,) = study.trials
    assert trial.state is TrialState.FAIL
    assert trial.error == "KeyError: 'not caught'"
    assert "raise KeyError" in trial.traceback


def test_custom_resource_decides_the_node(cluster, tmp_path):
    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=2)
    executor = RayExecutor(resources_per_trial={"num_cpus": 1, "resources": {"node_b": 1}})
    study.optimize(_node_objective(0.0), n_trials=4, executor=executor)
    trials = study.trials
    assert all(t.state is TrialState.COMPLETE for t in trials)
    # node_b holds one unit: one actor, every trial on node_b.
    assert {t.user_attrs["node"] for t in trials} == {cluster.node_id("node_b")}
    assert len({t.worker for t in trials}) == 1


def test_timeout_and_keyboard_interrupt(cluster, tmp_path):
    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=3)
    t0 = time.monotonic()
    study.optimize(_node_objective(0.2), timeout=2.0, executor=RayExecutor(max_concurrent=2))
    assert time.monotonic() - t0 < 15
    done = study.trials
    assert done
    assert all(t.state is TrialState.COMPLETE for t in done)

    # Ctrl-C in the driver: the running trials are cancelled and recorded, then it re-raises.
    timer = threading.Timer(0.5, _interrupt_when, args=(study, 2))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        study.optimize(_node_objective(60.0), n_trials=2, executor=RayExecutor())
    timer.join()
    cancelled = study.trials[len(done) :]
    assert len(cancelled) == 2
    assert all(t.state is TrialState.FAIL for t in cancelled)
    assert all(t.error.startswith("cancelled: the driver stopped") for t in cancelled)
    _wait_for(lambda: ray.available_resources().get("CPU") == 3.0, 30)


def _interrupt_when(study, n_running: int) -> None:
    import _thread

    store = study.storage
    _wait_for(lambda: len(store.running_trials(study.study_id)) >= n_running, 30)
    _wait_for(
        lambda: all(
            "node" in t.user_attrs
            for t in store.get_trials(study.study_id)[0]
            if t.state is TrialState.RUNNING
        ),
        30,
    )
    _thread.interrupt_main()


def _wait_for(cond, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def test_killed_node_fails_its_trial_with_the_node_named_and_retries(cluster, tmp_path):
    cluster.add_node("doomed")
    cluster.wait_nodes(4)
    doomed = cluster.node_id("doomed")
    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=4)
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            study.optimize(
                _node_objective(0.4, slow_node=doomed, slow=10.0),
                n_trials=12,
                executor=RayExecutor(max_retries=1, heartbeat_interval=0.5),
            )
        except BaseException as exc:
            errors.append(exc)

    driver = threading.Thread(target=drive)
    driver.start()
    store = study.storage

    def running_on_doomed() -> bool:
        rows = store.get_trials(study.study_id)[0]
        return any(
            t.state is TrialState.RUNNING and t.user_attrs.get("node") == doomed for t in rows
        )

    _wait_for(running_on_doomed, 60)
    cluster.kill_raylet("doomed")
    driver.join(timeout=120)
    assert not driver.is_alive()
    assert not errors, errors

    trials = study.trials
    assert [t.number for t in trials] == list(range(len(trials)))
    lost = [t for t in trials if t.state is TrialState.FAIL]
    assert lost, "the trial on the killed node was not failed"
    for t in lost:
        assert t.error.startswith("RayWorkerDied:"), t.error
        assert doomed in t.error
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    # 12 evaluations asked; each lost trial ran again, with its parameters, as a new trial.
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(complete) == 12
    assert len(trials) == 12 + len(lost)
    for t in lost:
        (rerun,) = [r for r in trials if r.system_attrs.get("requeued_from") == t.number]
        assert rerun.state is TrialState.COMPLETE
        assert rerun.params == t.params
        assert rerun.system_attrs["retry"] == 1
        assert rerun.user_attrs["node"] != doomed


def test_killed_worker_process_fails_its_trial_without_retries(cluster, tmp_path):
    marker = tmp_path / "exited"

    def objective(trial):
        if trial.number == 2 and not marker.exists():
            marker.write_text("")
            os._exit(1)  # the Ray worker process dies mid-trial
        return trial["x"]

    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=7)
    study.optimize(objective, n_trials=5, executor=RayExecutor(max_concurrent=2))
    trials = study.trials
    assert len(trials) == 5
    assert [t.number for t in trials if t.state is TrialState.FAIL] == [2]
    error = trials[2].error
    assert error.startswith("RayWorkerDied: the Ray worker running trial 2 died")
    assert trials[2].worker in error
    assert "requeued_from" not in str([t.system_attrs for t in trials])


DRIVER = textwrap.dedent("""
    import sys, time
    import airda
    from airda.space import Float
    from airda.study import RayExecutor

    address, path, n, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    study = airda.create_study(
        "restart", storage=path, space={"x": Float(-3.0, 3.0)}, seed=5, load_if_exists=True
    )

    def objective(trial):
        time.sleep(0.6)
        with open(log, "a") as f:  # one line per evaluation: a trial run twice shows twice
            f.write(f"{trial.number}\\n")
        return trial["x"] ** 2

    # The study holds the state: a study-wide total, whoever ran the trials it holds.
    study.optimize(
        objective, max_trials=n, executor=RayExecutor(address=address, max_concurrent=3)
    )
""")


def test_driver_killed_and_restarted_loses_and_repeats_nothing(cluster, tmp_path):
    path = tmp_path / "restart.db"
    log = tmp_path / "evaluations.txt"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    n = 12
    cmd = [sys.executable, str(script), cluster.address, str(path), str(n), str(log)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = None

    def mid_run() -> bool:
        nonlocal store
        with contextlib.suppress(Exception):  # the driver may be creating the file
            store = store or get_storage(path)
            study_id = store.get_study("restart").study_id
            rows = store.get_trials(study_id)[0]
            states = Counter(t.state for t in rows)
            return states[TrialState.COMPLETE] >= 3 and states[TrialState.RUNNING] >= 1
        return False

    _wait_for(mid_run, 120)
    first.kill()
    first.wait()
    at_kill = {t.number: t.state for t in store.get_trials(store.get_study("restart").study_id)[0]}
    assert TrialState.RUNNING in at_kill.values()
    assert len(at_kill) < n

    second = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr

    study = airda.load_study("restart", storage=path)
    trials = study.trials
    assert [t.number for t in trials] == list(range(n))
    assert all(t.state is TrialState.COMPLETE for t in trials), [
        (t.number, t.state, t.error) for t in trials
    ]
    # Every trial evaluated exactly once: the ones running when the driver died finished in
    # their actors and were not started again.
    evaluations = Counter(int(line) for line in log.read_text().split())
    assert evaluations == Counter(range(n))
    assert len({t.params["x"] for t in trials}) == n
    # A study that holds its total already runs nothing more.
    study.optimize(lambda t: 0.0, max_trials=n, executor=RayExecutor())
    assert len(study.trials) == n
    # No actor of the study is left behind.
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)]
    assert not [a for a in names if a.startswith("airda-")]


def test_trial_asked_but_never_handed_over_is_run_by_its_actor(cluster, tmp_path):
    """The window a driver can die in between asking a trial and handing it to its actor: the
    next driver finds the actor (named after the study) and hands the trial over."""
    from airda.study._ray import _Driver

    study = airda.create_study(storage=tmp_path / "s.db", space=SPACE, seed=9)
    executor = RayExecutor(max_concurrent=1)
    dead_driver = _Driver(executor, ray, study, None, 0, None, (), ())
    slot = dead_driver._new_slot()  # a detached actor, as the dead driver left it
    worker, _ = ray.get(slot.ready)
    orphan = study.storage.create_trial(study.study_id, {"x": 0.5}, worker=worker)
    study.optimize(_node_objective(0.0), n_trials=2, executor=executor)
    trials = study.trials
    assert len(trials) == 3
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert trials[orphan.number].worker == worker
    assert trials[orphan.number].value == (0.5 - 1.0) ** 2
    _wait_for(lambda: ray.available_resources().get("CPU") == 3.0, 30)


def test_postgres_study_on_ray(cluster):
    pytest.importorskip("psycopg", reason="psycopg 3 is not installed (the postgres extra)")
    from airda.testing import _postgres

    try:
        store = _postgres.fresh_storage()
    except _postgres.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server for the tests: {exc}")
    try:
        study = airda.create_study(storage=store, space=SPACE, seed=6)
        study.optimize(_node_objective(0.05), n_trials=6, executor=RayExecutor())
        trials = study.trials
        assert [t.number for t in trials] == list(range(6))
        assert all(t.state is TrialState.COMPLETE for t in trials)
    finally:
        _postgres.drop_schema(store)
