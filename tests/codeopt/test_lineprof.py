"""The sampling line profile of compiled variants: the hot line and the library functions a
variant calls are where the samples land; without addr2line the samples are still counted."""

from __future__ import annotations

import pytest

from airda._native import native_error
from airda.codeopt.cvariants import compile_variant, parse_arg
from airda.codeopt.lineprof import LineProfile, format_line_profile, map_samples
from airda.codeopt.sandbox import Sandbox

pytestmark = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")

# Line 5 does 64 times the work of line 7; line 9 calls libm's exp.
SRC = """#include <math.h>
void k(double *y, const double *x, int n) {
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int r = 0; r < 64; r++) s = s * 0.999 + x[(i + r) % n];
        y[i] = s;
        y[i] += x[i];
    }
    for (int i = 0; i < n; i++) y[i] += exp(x[i] * 1e-3) * 1e-9;
}
"""
ARGS = [parse_arg(a) for a in ("float64[4001]:zeros:out", "float64[4001]", "int32=4001")]


def _profile(source: str, seconds: float = 0.3) -> tuple[dict, object]:
    lib = compile_variant(source, "k", ARGS, flags="-O1 -g")
    with Sandbox(ARGS) as box:
        raw = box.line_profile("k", lib, seconds)
    return raw, lib


def test_samples_land_on_the_hot_line_and_in_libm():
    raw, lib = _profile(SRC)
    p = map_samples(raw, lib, SRC)
    assert p.samples >= 50  # 0.3 s at one sample per 200 us, whatever the load
    assert max(p.lines, key=p.lines.get) == 5, p
    assert p.text[5].startswith("for (int r = 0; r < 64; r++)")
    assert p.lines[5] > 0.5 * p.samples
    assert any("exp" in name for name in p.outside), p.outside
    line = format_line_profile(p)
    assert line.startswith(f"sampled {p.samples} times: ")
    assert "line 5 `for (int r = 0; r < 64; r++)" in line.split(",")[0]


def test_without_addr2line_the_samples_are_unmapped(monkeypatch):
    raw, lib = _profile(SRC, 0.05)
    monkeypatch.setattr("shutil.which", lambda name: None)
    p = map_samples(raw, lib, SRC)
    assert not p.lines
    assert p.unmapped + sum(p.outside.values()) == p.samples
    assert "elsewhere in the program" in format_line_profile(p) or p.unmapped == 0


def test_a_crash_while_profiling_is_a_failure_of_the_variant():
    from airda.codeopt.sandbox import VariantFailed

    crash = SRC.replace("y[i] = s;", "y[i] = s; if (i == n - 1) *(volatile int *)0 = 1;")
    lib = compile_variant(crash, "k", ARGS, flags="-O1 -g")
    with Sandbox(ARGS) as box, pytest.raises(VariantFailed):
        box.line_profile("k", lib, 0.05)


def test_format_skips_shares_under_one_percent_and_handles_no_samples():
    assert format_line_profile(LineProfile(samples=0)).startswith("no samples")
    p = LineProfile(samples=1000, lines={3: 995, 4: 5}, text={3: "a;", 4: "b;"})
    assert format_line_profile(p) == "sampled 1000 times: 100% line 3 `a;`"
