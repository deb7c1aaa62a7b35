"""Where a compiled variant spends its time, line by line: a sampling profile.

A small C sampler (compiled once, cached beside the variants) runs the variant in a loop in
the sandbox worker for a fraction of a second with ``SIGPROF`` firing every 200 us (a
high-resolution timer aimed at the worker's thread on Linux; the CPU-time interval timer
elsewhere); the handler records the interrupted instruction's address. After the loop, addresses
inside the variant's library become source lines with ``addr2line`` (the variant is compiled
again with ``-g``, which GCC and Clang promise does not change the generated code); addresses
elsewhere are named by their symbol (``exp`` in libm, ``memcpy``). Python variants are
sampled by a thread reading the calling thread's stack (:func:`sample_python`). No ``perf``
and no privileges needed: it works wherever the variant can run (Linux and macOS x86-64/arm64 with
``addr2line`` on the path; elsewhere the line mapping is skipped and only symbols are given).

    >>> from airda.codeopt.lineprof import LineProfile, format_line_profile
    >>> p = LineProfile(samples=200, lines={12: 150, 9: 30}, outside={"exp": 20},
    ...                 text={12: "s += a[i * n + k] * b[k * n + j];", 9: "double s = 0.0;"})
    >>> format_line_profile(p)
    'sampled 200 times: 75% line 12 `s += a[i * n + k] * b[k * n + j];`, 15% line 9 `double s = 0.0;`, 10% in exp'
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LineProfile",
    "format_line_profile",
    "map_samples",
    "python_profile",
    "sample_python",
    "sampler_library",
]

# The sampler: a SIGPROF handler storing the interrupted PC (async-signal-safe: one store and
# one increment), and a loop calling the variant until `seconds` of wall time have passed.
_SAMPLER = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

static unsigned long *airda_pcs;
static volatile long airda_n, airda_cap;

static void airda_on_prof(int sig, siginfo_t *si, void *ctx) {
    (void)sig; (void)si;
    ucontext_t *uc = (ucontext_t *)ctx;
    unsigned long pc = 0;
#if defined(__x86_64__) && defined(__linux__)
    pc = (unsigned long)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__) && defined(__linux__)
    pc = (unsigned long)uc->uc_mcontext.pc;
#elif defined(__x86_64__) && defined(__APPLE__)
    pc = (unsigned long)uc->uc_mcontext->__ss.__rip;
#elif defined(__aarch64__) && defined(__APPLE__)
    pc = (unsigned long)uc->uc_mcontext->__ss.__pc;
#endif
    if (pc && airda_n < airda_cap) airda_pcs[airda_n++] = pc;
}

static double airda_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Call fn(args) until `seconds` have passed (at least once) with the profiling timer firing
   every `usec` microseconds of CPU time; the PCs go to out[0..cap); returns how many. */
long airda_lineprof(void (*fn)(void *), void *args, double seconds, unsigned long *out,
                    long cap, long usec) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = airda_on_prof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    airda_pcs = out; airda_cap = cap; airda_n = 0;
    if (sigaction(SIGPROF, &sa, &old) != 0) return -1;
    double end = airda_now() + seconds;
#if defined(__linux__) && defined(SIGEV_THREAD_ID)
    /* A high-resolution timer aimed at this thread: the CPU-time itimer ticks at the
       kernel's HZ (every 4 ms), too coarse for a call of a few milliseconds. */
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t timer;
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer) == 0) {
        struct itimerspec on = {{0, usec * 1000}, {0, usec * 1000}};
        timer_settime(timer, 0, &on, NULL);
        do { fn(args); } while (airda_now() < end && airda_n < airda_cap);
        timer_delete(timer);
        sigaction(SIGPROF, &old, NULL);
        return airda_n;
    }
#endif
    struct itimerval on = {{0, usec}, {0, usec}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &on, NULL);
    do { fn(args); } while (airda_now() < end && airda_n < airda_cap);
    setitimer(ITIMER_PROF, &off, NULL);
    sigaction(SIGPROF, &old, NULL);
    return airda_n;
}
"""


def sampler_library() -> Path:
    """The compiled sampler (built on first use into the variants' cache folder)."""
    from airda.codeopt.cvariants import _default_compiler, cache_dir, compiler_version

    cc = _default_compiler(False)
    key = hashlib.sha256(f"{_SAMPLER}\0{cc}\0{compiler_version(cc)}".encode()).hexdigest()[:16]
    lib = cache_dir() / f"lineprof-{key}.so"
    if lib.is_file():
        return lib
    src = lib.with_suffix(".c")
    src.write_text(_SAMPLER)
    tmp = lib.with_name(f"{lib.name}.{os.getpid()}.tmp")
    proc = subprocess.run(
        [cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(src)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the line sampler does not compile: {proc.stderr.strip()[:400]}")
    os.replace(tmp, lib)
    return lib


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def sample_in_process(
    sampler: str, fn: int, args: int, seconds: float, cap: int = 20_000, usec: int = 200
) -> dict[str, list]:
    """Run the sampler on the function at address `fn` with the argument block `args` (in
    the sandbox worker); samples grouped as ``{"variant": [[offset, count]...], "outside":
    [[symbol, count]...]}``, offsets relative to the library that holds `fn`."""
    lib = ctypes.CDLL(sampler)
    run = lib.airda_lineprof
    run.restype = ctypes.c_long
    run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double, ctypes.c_void_p,
                    ctypes.c_long, ctypes.c_long]  # fmt: skip
    buf = (ctypes.c_ulong * cap)()
    n = run(fn, args, float(seconds), buf, cap, int(usec))
    if n < 0:
        raise RuntimeError("cannot install the SIGPROF handler")
    libc = ctypes.CDLL(None)
    dladdr = libc.dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    home = _DlInfo()
    if not dladdr(fn, ctypes.byref(home)):
        raise RuntimeError("cannot find the variant's library")
    inside: Counter[int] = Counter()
    outside: Counter[str] = Counter()
    for pc, count in Counter(buf[:n]).items():
        info = _DlInfo()
        if dladdr(pc, ctypes.byref(info)) and info.dli_fbase == home.dli_fbase:
            inside[pc - int(home.dli_fbase or 0)] += count
        elif info.dli_sname:
            outside[info.dli_sname.decode(errors="replace")] += count
        elif info.dli_fname:
            outside[os.path.basename(info.dli_fname.decode(errors="replace"))] += count
        else:
            outside["?"] += count
    return {"variant": sorted(inside.items()), "outside": sorted(outside.items())}


def sample_python(
    fn: Any,
    make_args: Any,
    seconds: float,
    *,
    filename: str = "<candidate>",
    interval: float = 5e-4,
    beat: Any = None,
) -> dict[str, list]:
    """Call ``fn(*make_args())`` until `seconds` have passed (at least once) while a thread
    samples the calling thread's stack every `interval` seconds: the line of the innermost
    frame of code compiled from `filename` (time in NumPy or another library counts for the
    line of the program that called it). ``{"lines": [[line, count]...], "outside":
    [[where, count]...]}``; ``outside`` holds samples outside the program (making the
    arguments, the loop)."""
    import threading
    import time

    target = threading.get_ident()
    lines: Counter[int] = Counter()
    outside: Counter[str] = Counter()
    stop = threading.Event()

    def sampler() -> None:
        while not stop.wait(interval):
            frame = sys._current_frames().get(target)
            while frame is not None and frame.f_code.co_filename != filename:
                frame = frame.f_back
            if frame is None:
                outside["the harness"] += 1
            else:
                lines[frame.f_lineno] += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(min(old, interval / 2))
    thread = threading.Thread(target=sampler, name="airda-lineprof", daemon=True)
    thread.start()
    try:
        end = time.perf_counter() + float(seconds)
        while True:
            fn(*make_args())
            if beat is not None:
                beat()
            if time.perf_counter() >= end:
                break
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old)
    return {"lines": sorted(lines.items()), "outside": sorted(outside.items())}


def python_profile(raw: dict[str, list], source: str) -> LineProfile:
    """:func:`sample_python`'s samples as a :class:`LineProfile` of `source`."""
    src_lines = source.splitlines()
    lines = {int(k): int(c) for k, c in raw.get("lines", []) if 1 <= int(k) <= len(src_lines)}
    outside = {str(w): int(c) for w, c in raw.get("outside", [])}
    return LineProfile(
        samples=sum(lines.values()) + sum(outside.values()),
        lines=lines,
        outside=outside,
        text={k: src_lines[k - 1].strip() for k in lines},
    )


@dataclass(frozen=True)
class LineProfile:
    """A sampling profile of a variant.

    Attributes:
        samples: how many samples were taken.
        lines: source line (1-based, of the variant's text) -> samples.
        outside: samples outside the variant's own code, by symbol (``exp``, ``memset``...).
        text: the source text of each sampled line (stripped).
        unmapped: samples in the variant's library whose line is unknown (the trampoline,
            or no ``addr2line``).
    """

    samples: int
    lines: dict[int, int] = field(default_factory=dict)
    outside: dict[str, int] = field(default_factory=dict)
    text: dict[int, str] = field(default_factory=dict)
    unmapped: int = 0


def map_samples(raw: dict[str, list], debug_library: Path, source: str) -> LineProfile:
    """Turn :func:`sample_in_process`'s offsets into source lines of `source` with
    ``addr2line`` on `debug_library` (the variant compiled with ``-g``; its first lines are
    `source`'s)."""
    offsets = [(int(o), int(c)) for o, c in raw.get("variant", [])]
    outside = {str(s): int(c) for s, c in raw.get("outside", [])}
    total = sum(c for _, c in offsets) + sum(outside.values())
    lines: Counter[int] = Counter()
    unmapped = 0
    n_src = len(source.splitlines())
    tool = shutil.which("addr2line") if sys.platform.startswith("linux") else None
    if offsets and tool:
        proc = subprocess.run(
            [tool, "-e", str(debug_library), *[hex(o) for o, _ in offsets]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        answers = proc.stdout.splitlines() if proc.returncode == 0 else []
        if len(answers) != len(offsets):
            answers = ["??:0"] * len(offsets)
        for (_, count), where in zip(offsets, answers, strict=True):
            line = where.rsplit(":", 1)[-1].split()[0] if ":" in where else "0"
            k = int(line) if line.isdigit() else 0
            if 1 <= k <= n_src:
                lines[k] += count
            else:
                unmapped += count
    else:
        unmapped = sum(c for _, c in offsets)
    src_lines = source.splitlines()
    return LineProfile(
        samples=total,
        lines=dict(lines),
        outside=outside,
        text={k: src_lines[k - 1].strip() for k in lines},
        unmapped=unmapped,
    )


def format_line_profile(p: LineProfile, top: int = 3) -> str:
    """One line for a prompt: the share of samples of the hottest lines and symbols."""
    if p.samples <= 0:
        return "no samples (the call is too short to sample)"
    items: list[tuple[int, str]] = [
        (c, f"line {k} `{p.text.get(k, '')[:60]}`") for k, c in p.lines.items()
    ]
    items += [(c, f"in {name}") for name, c in p.outside.items()]
    if p.unmapped:
        items.append((p.unmapped, "elsewhere in the program"))
    items.sort(key=lambda t: -t[0])
    shown = [f"{round(100 * c / p.samples)}% {what}" for c, what in items[:top]
             if 100 * c >= p.samples]  # fmt: skip
    return f"sampled {p.samples} times: " + ", ".join(shown)
