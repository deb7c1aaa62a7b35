"""The sandbox is a sandbox: processes a variant starts do not outlive it, resource limits and an
environment allow-list apply, the channel is not pickle and junk on it fails one variant only,
timeouts apply per call, and tuning input is bounded and checked."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from airda._native import native_error
from airda.codeopt import (
    Arg,
    Limits,
    Sandbox,
    VariantFailed,
    compile_variant,
    parse_arg,
    tune_c,
    tune_python,
)
from airda.codeopt import _worker as W
from airda.codeopt.cvariants import cache_dir

pytestmark = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")

ARGS = [Arg("float32", (8,), "zeros", out=True), Arg("float32", (8,)), Arg("int32", value=8)]
REF = "void twice(float* y, const float* x, int n) { for (int i = 0; i < n; ++i) y[i] = 2*x[i]; }"
HEAD = """
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>
"""


def _token() -> str:
    return secrets.token_hex(8)


def _leftovers(token: str) -> list[int]:
    """Live processes whose environment carries AIRDA_TEST_TOKEN=token (what the variants of a
    sandbox given env={"AIRDA_TEST_TOKEN": token} started, whatever became of their parents)."""
    mark = f"AIRDA_TEST_TOKEN={token}".encode()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if mark in f.read().split(b"\0"):
                    out.append(int(name))
        except OSError:
            continue
    return out


def _wait_for(cond, seconds: float = 10.0) -> bool:
    """Poll an asynchronous outcome (a signal delivered, a process gone) up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


# ---- processes ----------------------------------------------------------------------------

# MODE 1: a child spinning for ever; 2: a daemon (setsid, double fork) pausing for ever;
# 3: a plain fork(): the child returns into the worker too.
FORKS = (
    HEAD
    + """
void twice(float* y, const float* x, int n) {
    if (MODE == 1 && fork() == 0) { for (;;) {} }
    if (MODE == 2) {
        pid_t p = fork();
        if (p == 0) { setsid(); if (fork() == 0) { for (;;) pause(); } _exit(0); }
        waitpid(p, 0, 0);
    }
    if (MODE == 3) fork();
    for (int i = 0; i < n; ++i) y[i] = 2.0f * x[i];
}
"""
)


def test_variants_that_fork_or_daemonise_fail_and_leave_no_process():
    token = _token()
    res = tune_c(
        FORKS,
        "twice",
        ARGS,
        params={"MODE": [0, 1, 2, 3]},
        flags=["-O1"],
        reference=REF,
        strategy="grid",
        max_time_s=0.01,
        env={"AIRDA_TEST_TOKEN": token},
    )
    rows = {r["params"]["MODE"]: r for r in res.rows}
    assert rows[0]["state"] == "complete"
    for mode in (1, 2, 3):
        assert rows[mode]["failure"] == "processes", rows[mode]
        assert "left" in rows[mode]["error"]
    assert res.best_params["MODE"] == 0
    assert _leftovers(token) == []


HANG_WITH_CHILDREN = (
    HEAD
    + """
void twice(float* y, const float* x, int n) {
    if (fork() == 0) { for (;;) pause(); }                   /* in the worker's group */
    pid_t p = fork();
    if (p == 0) {                                            /* a daemon out of it */
        setsid();
        if (fork() == 0) { FILE* f = fopen(MARK, "w"); if (f) fclose(f); for (;;) pause(); }
        _exit(0);
    }
    waitpid(p, 0, 0);
    for (;;) pause();                                        /* hangs */
}
"""
)


def test_a_timeout_kills_the_group_and_its_daemons(tmp_path):
    token = _token()
    lib = compile_variant(
        HANG_WITH_CHILDREN, "twice", ARGS, defines={"MARK": f'"{tmp_path / "m"}"'}
    )
    with Sandbox(ARGS, timeout=0.3, env={"AIRDA_TEST_TOKEN": token}) as box:
        with pytest.raises(VariantFailed) as info:
            box.run("hang", lib)
        assert info.value.kind == "timeout"
        assert _leftovers(token) == []
        assert box.ping() == "pong"  # a fresh worker


def test_the_tuner_dying_takes_every_sandbox_process_with_it(tmp_path):
    token = _token()
    mark = tmp_path / "daemon-started"
    script = textwrap.dedent(
        f"""
        import sys
        from airda.codeopt import Arg, Sandbox, compile_variant
        ARGS = [Arg("float32", (8,), "zeros", out=True), Arg("float32", (8,)),
                Arg("int32", value=8)]
        lib = compile_variant(sys.argv[1], "twice", ARGS, defines={{"MARK": '"{mark}"'}})
        box = Sandbox(ARGS, timeout=60, env={{"AIRDA_TEST_TOKEN": "{token}"}})
        box.run("hang", lib)
        """
    )
    tuner = subprocess.Popen([sys.executable, "-c", script, HANG_WITH_CHILDREN])
    try:
        assert _wait_for(mark.exists, 60), "the variant's daemon never started"
        assert len(_leftovers(token)) >= 3  # supervisor, worker, child, daemon
    finally:
        tuner.kill()
        tuner.wait()
    assert _wait_for(lambda: not _leftovers(token)), _leftovers(token)


def test_an_interrupted_request_is_stopped_at_once(tmp_path):
    token = _token()
    lib = compile_variant(
        HANG_WITH_CHILDREN, "twice", ARGS, defines={"MARK": f'"{tmp_path / "m"}"'}
    )

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    box = Sandbox(ARGS, timeout=60, env={"AIRDA_TEST_TOKEN": token})
    try:
        box.ping()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            box.run("hang", lib)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        t0 = time.monotonic()
        box.close()
    assert time.monotonic() - t0 < 2.0  # killed, not asked to exit and waited for
    assert _leftovers(token) == []


MANY = (
    HEAD
    + """
void twice(float* y, const float* x, int n) {
    for (int i = 0; i < 40; ++i) if (fork() == 0) { for (;;) pause(); }
    for (;;) pause();
}
"""
)


def test_the_process_limit_holds_also_for_root():
    # a user's fork() fails at the limit (RLIMIT_NPROC); root's does not, and the tuner
    # counts the worker's processes instead
    token = _token()
    lib = compile_variant(MANY, "twice", ARGS)
    limits = Limits(processes=20)
    with Sandbox(ARGS, timeout=1.0, limits=limits, env={"AIRDA_TEST_TOKEN": token}) as box:
        with pytest.raises(VariantFailed) as info:
            box.run("many", lib)
        if os.geteuid() == 0:
            assert info.value.kind == "limit"
            assert "more than 20 processes" in info.value.reason
        assert _leftovers(token) == []


# ---- environment, folder, limits ------------------------------------------------------------

ENV = (
    HEAD
    + """
void twice(float* y, const float* x, int n) {
    char cwd[4096];
    const char* home = getenv("HOME");
    y[0] = getenv("SECRET_TOKEN") != 0;
    y[1] = getenv("PASSED_ON") != 0;
    y[2] = home && getcwd(cwd, sizeof cwd) && strcmp(home, cwd) == 0;
    y[3] = getenv("OMP_NUM_THREADS") != 0;
}
"""
)


def test_variants_see_only_allowed_environment_and_their_own_folder(monkeypatch):
    from tests.codeopt import _pyvariants as pv

    monkeypatch.setenv("SECRET_TOKEN", "s3cret")
    monkeypatch.setenv("PASSED_ON", "yes")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    lib = compile_variant(ENV, "twice", ARGS)
    with Sandbox(ARGS) as box:
        assert box.run("env", lib)[0][:4].tolist() == [0, 0, 1, 1]
    with Sandbox(ARGS, env=["PASSED_ON"]) as box:
        assert box.run("env", lib)[0][:4].tolist() == [0, 1, 1, 1]
    with Sandbox(py_args=(np.ones(3),), env={"PASSED_ON": "other"}) as box:
        seen = box.run_callable("env", pv.environment)
    assert "SECRET_TOKEN" not in seen["env"]
    assert seen["env"]["PASSED_ON"] == "other"
    assert seen["cwd"] == seen["env"]["HOME"] == seen["env"]["TMPDIR"] != os.getcwd()
    assert not os.path.exists(seen["cwd"])  # removed with the sandbox


LIMITS = (
    HEAD
    + """
void lim(long long* out) {
    int res[5] = {RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NPROC, RLIMIT_CORE};
    for (int i = 0; i < 5; ++i) {
        struct rlimit r;
        getrlimit(res[i], &r);
        out[2 * i] = (long long)r.rlim_cur;
        out[2 * i + 1] = (long long)r.rlim_max;
    }
}
"""
)


def test_resource_limits_apply_in_the_worker():
    args = [Arg("int64", (10,), "zeros", out=True)]
    lib = compile_variant(LIMITS, "lim", args)
    limits = Limits(memory=6 << 30, cpu_time=7, file_size=1 << 20, processes=50)
    with Sandbox(args, limits=limits) as box:
        got = box.run("lim", lib)[0].tolist()
    (as_cur, as_max, cpu_cur, _, fs_cur, fs_max, np_cur, np_max, core_cur, _) = got
    assert as_cur == as_max == 6 << 30
    assert fs_cur == fs_max == 1 << 20
    assert 7 <= cpu_cur <= 7 + 10  # the worker's CPU time so far + 7 s for this request
    assert np_cur == np_max >= 50  # the user's processes now + 50 (root: not applied)
    assert core_cur == 0


MEMORY = HEAD + "void twice(float* y, const float* x, int n) { void* p = malloc((size_t)2 << 30);"
MEMORY += " y[0] = p != 0; free(p); }"
FILESIZE = (
    HEAD
    + """
void twice(float* y, const float* x, int n) {
    static char block[1 << 16];
    FILE* f = fopen("big.bin", "wb");
    for (int i = 0; i < 64; ++i) fwrite(block, 1, sizeof block, f);    /* 4 MiB */
    fclose(f);
    y[0] = 1;
}
"""
)
CPU = HEAD + "void twice(float* y, const float* x, int n) { raise(SIGXCPU); }"


def test_memory_file_size_and_cpu_limits_fail_the_variant():
    mem = compile_variant(MEMORY, "twice", ARGS)
    with Sandbox(ARGS, limits=Limits(memory=1 << 30)) as box:
        assert box.run("mem", mem)[0][0] == 0  # the allocation failed in the variant
    with Sandbox(ARGS, limits=Limits(memory=None)) as box:
        assert box.run("mem", mem)[0][0] == 1
    big = compile_variant(FILESIZE, "twice", ARGS)
    with Sandbox(ARGS, limits=Limits(file_size=1 << 20)) as box:
        with pytest.raises(VariantFailed) as info:
            box.run("big", big)
        assert info.value.kind == "limit"
        assert "file size limit exceeded" in info.value.reason
        # the kernel's SIGXCPU is what RLIMIT_CPU sends: reported as the limit
        with pytest.raises(VariantFailed) as info:
            box.run("cpu", compile_variant(CPU, "twice", ARGS))
        assert info.value.kind == "limit"
        assert "CPU time limit exceeded" in info.value.reason
    with pytest.raises(ValueError, match="cpu_time"):
        Limits(cpu_time=0)
    with pytest.raises(ValueError, match="memory"):
        Limits(memory=-1)


NOISY = (
    HEAD
    + """
void twice(float* y, const float* x, int n) {
    static char line[1024];
    memset(line, 'x', sizeof line - 1);
    for (int i = 0; i < 4096; ++i) puts(line);                         /* 4 MiB a call */
    fflush(stdout);
    if (MODE == 1) { fprintf(stderr, "last words\\n"); abort(); }
    for (int i = 0; i < n; ++i) y[i] = 2.0f * x[i];
}
"""
)


def _deleted_open_bytes() -> int:
    """Bytes in files this process holds open that are deleted (a temporary file)."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)"):
                st = os.fstat(int(fd))
                total += st.st_size if st.st_mode & 0o170000 == 0o100000 else 0
        except OSError:
            continue
    return total


def test_output_is_captured_up_to_a_cap_and_not_stored():
    quiet = compile_variant(NOISY, "twice", ARGS, defines={"MODE": 0})
    loud = compile_variant(NOISY, "twice", ARGS, defines={"MODE": 1})
    before = _deleted_open_bytes()
    with Sandbox(ARGS, limits=Limits(output=64 << 10)) as box:
        for _ in range(3):
            box.run("quiet", quiet)
        assert _deleted_open_bytes() - before < 1 << 20  # not 12 MiB in a temporary file
        text = box.last_output
        assert "bytes dropped" in text
        assert len(text) < (64 << 10) + 100
        with pytest.raises(VariantFailed) as info:
            box.run("loud", loud)
        assert "SIGABRT" in info.value.reason
        assert "last words" in info.value.reason


# A: leaves a child that prints for ever on the worker's output; B: prints, then crashes.
HOLDS_PIPE = (
    HEAD
    + """
void twice(float* y, const float* x, int n) {
    if (MODE == 0 && fork() == 0) {
        for (;;) { fprintf(stderr, "noise of A\\n"); fflush(stderr); usleep(1000); }
    }
    if (MODE == 1) { fprintf(stderr, "words of B\\n"); fflush(stderr); *(volatile int*)0 = 1; }
    for (int i = 0; i < n; ++i) y[i] = 2.0f * x[i];
}
"""
)


def test_a_crash_after_another_variants_children_is_its_own_crash():
    a = compile_variant(HOLDS_PIPE, "twice", ARGS, defines={"MODE": 0})
    b = compile_variant(HOLDS_PIPE, "twice", ARGS, defines={"MODE": 1})
    with Sandbox(ARGS, timeout=2.0) as box:
        with pytest.raises(VariantFailed) as info:
            box.run("a", a)
        assert info.value.kind == "processes"
        with pytest.raises(VariantFailed) as info:
            box.run("b", b)
        assert info.value.kind == "crash"
        assert "SIGSEGV" in info.value.reason
        assert "words of B" in info.value.reason
        assert "noise of A" not in info.value.output


# ---- the channel ------------------------------------------------------------------------------

# MODE 1: junk on descriptors 3..9; MODE 2: junk on every descriptor from 3 (the channel too).
JUNK = (
    HEAD
    + """
void twice(float* y, const float* x, int n) {
    int top = MODE == 1 ? 10 : MODE == 2 ? 1024 : 3;
    for (int fd = 3; fd < top; ++fd) if (write(fd, "junk", 4)) {}
    for (int i = 0; i < n; ++i) y[i] = 2.0f * x[i];
}
"""
)


def test_junk_on_descriptors_fails_one_variant_and_the_search_goes_on():
    res = tune_c(
        JUNK,
        "twice",
        ARGS,
        params={"MODE": [2, 1, 0]},
        flags=["-O1"],
        reference=REF,
        strategy="grid",
        max_time_s=0.01,
    )
    rows = {r["params"]["MODE"]: r for r in res.rows}
    assert rows[2]["failure"] == "protocol"
    assert "protocol error" in rows[2]["error"]
    assert rows[1]["state"] == "complete"  # descriptors 3..9 are not the channel
    assert rows[0]["state"] == "complete"
    assert res.n_failed == 1


def test_results_come_back_as_data_never_unpickled():
    from tests.codeopt import _pyvariants as pv

    with Sandbox(py_args=(np.arange(4.0),)) as box:
        with pytest.raises(VariantFailed, match="cannot send"):
            box.run_callable("evil", pv.evil)
        assert pv.PWNED == []  # the object's __reduce__ never ran here
        value = box.run_callable("fast", pv.fast)
        np.testing.assert_array_equal(value, np.cumsum(np.arange(4.0)))
        # a child forked by a Python variant that returns is stopped before it can reply
        np.testing.assert_array_equal(box.run_callable("fork", pv.fork_returns), value)
        assert box.ping() == "pong"


def test_frames_round_trip_and_refuse_malformed_input():
    value = {
        "a": [1, 2.5, float("nan"), -float("inf"), None, True, "s", b"raw"],
        3: (np.arange(6, dtype=np.int16).reshape(2, 3), np.float32(1.5), 1 + 2j),
        "long": [float(i) for i in range(100)],
    }
    parts = W.frame(7, value)
    head = W.parse_header(parts[0], 1 << 20)
    assert head[0] == 7
    got = W.parse_body(parts[1], memoryview(b"".join(parts[2:])))
    assert got["a"][:2] == [1, 2.5]
    assert np.isnan(got["a"][2])
    assert got["a"][3:] == [-float("inf"), None, True, "s", b"raw"]
    arr, scalar, z = got[3]
    np.testing.assert_array_equal(arr, np.arange(6, dtype=np.int16).reshape(2, 3))
    assert (scalar, scalar.dtype, z) == (1.5, np.float32, 1 + 2j)
    assert got["long"] == [float(i) for i in range(100)]
    with pytest.raises(W.ProtocolError, match="magic"):
        W.parse_header(b"junk" + parts[0][4:], 1 << 20)
    with pytest.raises(W.ProtocolError, match="too large"):
        W.parse_header(W.FRAME.pack(W.MAGIC, 1, 10, 1 << 50), 1 << 20)
    blob = memoryview(b"\0" * 8)
    for bad in (
        b'{"v": {"$": "a", "b": 0, "dt": "|O", "sh": [1]}, "n": [8]}',  # objects
        b'{"v": {"$": "a", "b": 0, "dt": "<f8", "sh": [2]}, "n": [8]}',  # wrong size
        b'{"v": {"$": "pickle", "b": 0}, "n": [8]}',
        b'{"v": {"x": 1}, "n": [8]}',
        b"not json",
    ):
        with pytest.raises(W.ProtocolError):
            W.parse_body(bad, blob)
    with pytest.raises(TypeError, match="cannot send"):
        W.frame(1, object())


# ---- timeouts per call ----------------------------------------------------------------------


def test_a_python_call_slower_than_a_measurement_share_is_not_a_timeout():
    from tests.codeopt import _pyvariants as pv

    with Sandbox(py_args=(np.ones(4),), timeout=0.5) as box:
        # warm-up, calibration and two samples: 1.2 s in all, 0.3 s a call
        raw = box.sample_callable("slow", pv.slow_call, 2)
    assert len(raw["samples"]) == 2
    assert min(raw["samples"]) > 0.25


SLOW_C = (
    HEAD
    + """
static int calls;
void twice(float* y, const float* x, int n) {
    struct timespec t0, t;
    ++calls;
    if (HANG_AT && calls >= HANG_AT) for (;;) pause();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &t);                       /* 0.15 s a call */
    while ((t.tv_sec - t0.tv_sec) + 1e-9 * (t.tv_nsec - t0.tv_nsec) < 0.15);
    for (int i = 0; i < n; ++i) y[i] = 2.0f * x[i];
}
"""
)
_OPTS = {
    "warmup": 1,
    "inner": 0,
    "min_sample_s": 1e-3,
    "min_samples": 3,
    "max_samples": 3,
    "rel_ci": 0.01,
    "confidence": 0.95,
    "max_time_s": 0.05,
    "flush": False,
    "flush_bytes": 0,
    "clock": 0,
}


def test_compiled_timeouts_apply_to_each_call():
    slow = compile_variant(SLOW_C, "twice", ARGS, defines={"HANG_AT": 0})
    hangs = compile_variant(SLOW_C, "twice", ARGS, defines={"HANG_AT": 3})
    with Sandbox(ARGS, timeout=0.4) as box:
        t0 = time.monotonic()
        raw = box.profile("slow", slow, _OPTS)  # 5 calls of 0.15 s under a 0.4 s timeout
        assert time.monotonic() - t0 > 0.4
        assert min(raw["samples"]) > 0.1
        t0 = time.monotonic()
        with pytest.raises(VariantFailed) as info:
            box.profile("hangs", hangs, _OPTS)  # the third call hangs
        assert info.value.kind == "timeout"
        assert "a call ran over 0.4 s" in info.value.reason
        assert time.monotonic() - t0 < 3.0  # not the measurement's whole allowance


# ---- input and the study ----------------------------------------------------------------------


def test_shape_expressions_are_bounded():
    t0 = time.monotonic()
    for text, message in [
        ("float32[10**10**10]", "too large"),
        ("float32[2**40]", "needs 4 TiB"),
        ("float32[N**N]", "too large"),
        ("float32[N/2]", "unsupported"),
        ("float32[2.5]", "integers"),
        ("float32[N//0]", "division by zero"),
        ("float32[" + "+".join(["1"] * 200) + "]", "too"),
        ("int8=300", "does not fit int8"),
        ("float32=1e308*1e308", "out of range"),
        ("float32[-4]", "non-negative"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_arg(text, {"N": 1 << 20})
    assert time.monotonic() - t0 < 1.0
    assert parse_arg("float32[N*N//4, 2**3]", {"N": 16}).shape == (64, 8)
    assert parse_arg("float64=N/4", {"N": 10}).value == 2.5


def test_jobs_and_timeouts_are_validated():
    for kw, message in [
        ({"jobs": -2}, "jobs"),
        ({"jobs": 0}, "jobs"),
        ({"variant_timeout": 0}, "variant_timeout"),
        ({"variant_timeout": float("nan")}, "variant_timeout"),
        ({"max_time_s": -1.0}, "max_time_s"),
    ]:
        with pytest.raises(ValueError, match=message):
            tune_c(REF, "twice", ARGS, **kw)
    with pytest.raises(ValueError, match="timeout"):
        Sandbox(ARGS, timeout=0)


def test_a_tuned_macro_the_source_never_mentions_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="'UNROLLL' does not appear in the kernel source"):
        tune_c(REF, "twice", ARGS, params={"UNROLLL": [1, 2]})
    # a macro used in a local header is found there
    (tmp_path / "k.h").write_text("#define STEP (UNROLL * 1)\n")
    src = tmp_path / "k.c"
    src.write_text('#include "k.h"\n' + REF.replace("++i", "i += STEP / UNROLL"))
    res = tune_c(src, "twice", ARGS, params={"UNROLL": [1]}, reference=REF, max_time_s=0.01)
    assert res.n_complete == 1
    # a header that cannot be read: a warning, not an error
    with pytest.warns(UserWarning, match="'NOPE' does not appear"):
        tune_c(
            '#include "missing.h"\n' + REF,
            "twice",
            ARGS,
            params={"NOPE": [1]},
            reference=REF,
            max_time_s=0.01,
            final_race=0,
        )


def test_the_study_holds_one_trial_per_variant(tmp_path):
    kernel = FORKS.replace("MODE == 3) fork()", "MODE == 3) y[0] = 0")
    kw = dict(
        params={"MODE": [0, 4]},
        flags=["-O1", "-Onope", "-O2"],
        reference=REF,
        strategy="random",
        max_time_s=0.01,
        storage=str(tmp_path / "s.db"),
        seed=1,
    )
    first = tune_c(kernel, "twice", ARGS, **kw)
    assert len(first.study.trials) == 6
    assert first.n_failed == 2  # the two -Onope variants
    second = tune_c(kernel, "twice", ARGS, **kw)
    assert second.evaluated == 0
    assert len(second.study.trials) == 6
    from tests.codeopt import _pyvariants as pv

    x = np.linspace(0.0, 1.0, 500)
    res = tune_python(
        {"fast": pv.fast, "slow": pv.slow, "wrong": pv.wrong, "raises": pv.raises},
        (x,),
        reference=pv.reference,
        strategy="random",
        max_time_s=0.01,
        storage=str(tmp_path / "p.db"),
    )
    assert len(res.study.trials) == 4
    assert res.n_failed == 2


def test_docs_name_the_real_cache_folder(monkeypatch, tmp_path):
    for name in ("AIRDA_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "airda" / "tune"
    doc = (Path(__file__).resolve().parents[2] / "docs" / "tune.md").read_text()
    assert "`~/.cache/airda/tune`" in doc
    assert "airda/codeopt`" not in doc


# ---- compiling ----------------------------------------------------------------------------------

FAKE_CC = """#!/bin/sh
# a compiler that writes half an output, then waits as long as its parent lives
case "$1" in --version) echo "fakecc 1.0"; exit 0;; esac
prev=; out=
for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
echo partial > "$out"
echo $$ > "$FAKECC_MARK.tmp" && mv "$FAKECC_MARK.tmp" "$FAKECC_MARK"
# (and not past being re-parented: a parent's pid may be reused by another process)
while kill -0 $PPID 2>/dev/null && [ "$(cut -d' ' -f4 /proc/$$/stat)" = "$PPID" ]; do sleep 0.02; done
exit 1
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_temporary_file_is_left_after_a_kill_during_compile(tmp_path, monkeypatch, sig):
    cc = tmp_path / "fakecc"
    cc.write_text(FAKE_CC)
    cc.chmod(0o755)
    (tmp_path / "k.c").write_text("void scale(float* y, int n) { y[0] = U; }\n")
    mark = tmp_path / "compiling"
    env = dict(os.environ, AIRDA_CACHE_DIR=str(tmp_path / "cache"), FAKECC_MARK=str(mark))
    argv = [
        "tune", "c", str(tmp_path / "k.c"), "--entry", "scale", "--arg", "float32[4]:zeros:out",
        "--arg", "int32=4", "--param", "U=1,2", "--compiler", str(cc), "--storage", "memory://",
    ]  # fmt: skip
    tuner = subprocess.Popen([sys.executable, "-m", "airda.cli", *argv], env=env)
    try:
        assert _wait_for(mark.exists, 60), "the compiler never started"
        compiler_pid = int(mark.read_text())
        tuner.send_signal(sig)
        rc = tuner.wait(timeout=30)
    finally:
        tuner.kill()
        tuner.wait()
    assert rc == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
    assert _wait_for(lambda: not Path(f"/proc/{compiler_pid}").exists())
    folder = tmp_path / "cache" / "tune"
    assert not list(folder.glob("*.so.tmp"))
    assert not list(folder.glob("*.so"))
    if sig == signal.SIGKILL:  # no chance to clean up: the next compile removes what is left
        monkeypatch.setenv("AIRDA_CACHE_DIR", str(tmp_path / "cache"))
        assert list(folder.glob(".build-*"))
        compile_variant(REF, "twice", ARGS)
    assert not list(folder.glob(".build-*"))


def test_compile_errors_are_shown_in_full(tmp_path, capsys):
    from airda.cli import main

    name = "undeclared_" + "x" * 3000
    (tmp_path / "k.c").write_text(f"void scale(float* y, int n) {{ y[0] = U + {name}; }}\n")
    argv = [
        "tune", "c", str(tmp_path / "k.c"), "--entry", "scale", "--arg", "float32[4]:zeros:out",
        "--arg", "int32=4", "--param", "U=1,2", "--storage", "memory://",
    ]  # fmt: skip
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "compile error of 2 variant(s)" in out
    assert name in out  # the whole message, not its first 2,000 characters
    assert "k.c:1:" in out  # named after the kernel, with the kernel's line numbers
