"""``airda evolve``: help, a run with the deterministic rewrites, exit codes."""

from __future__ import annotations

import json

import pytest

from airda._native import native_error
from airda.cli import main
from tests.codeopt.evolve._kernels import REFERENCE

pytestmark = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")


def write_spec(folder, extra=""):
    (folder / "psum.c").write_text(REFERENCE)
    path = folder / "spec.toml"
    path.write_text(
        'name = "psum"\nsource = "psum.c"\nentry = "psum"\n'
        'args = ["float64[N]:zeros:out", "float64[N]", "int32=N"]\n'
        'quick_args = ["float64[3]:zeros:out", "float64[3]", "int32=3"]\n'
        "defines = { N = 300 }\natol = 0.0\nrtol = 0.0\nmax_time_s = 0.02\n"
        "final_time_s = 0.05\n" + extra
    )
    return path


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evolve", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--budget" in out
    assert "--endpoint" in out
    assert "--no-lm" in out
    assert "spec.toml" in out


def test_no_lm_run_report_and_resume(tmp_path, capsys):
    spec = write_spec(tmp_path)
    db = str(tmp_path / "ev.db")
    assert main(["-q", "evolve", str(spec), "--budget", "4", "--no-lm", "--storage", db]) == 0
    out = capsys.readouterr().out
    assert "4 candidates evaluated" in out
    assert "lineage of the winner" in out
    assert main(["-q", "evolve", str(spec), "--budget", "5", "--storage", db, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["evaluated"] == 5
    assert doc["lineage"][0]["proposer"] == "reference"


def test_bad_spec_and_usage_exit_2(tmp_path, capsys):
    spec = write_spec(tmp_path, "bogus = 1\n")
    assert main(["evolve", str(spec), "--storage", ":memory:"]) == 2
    assert "unknown keys ['bogus']" in capsys.readouterr().err
    assert main(["evolve", str(tmp_path / "missing.toml")]) == 2
    spec = write_spec(tmp_path)
    assert main(["evolve", str(spec), "--model", "m", "--storage", ":memory:"]) == 2
    assert "--model goes with --endpoint" in capsys.readouterr().err
    assert main(["evolve", str(spec), "--budget", "0"]) == 2


def test_a_reference_that_fails_exits_2(tmp_path, capsys):
    spec = write_spec(tmp_path)
    (tmp_path / "psum.c").write_text(
        REFERENCE.replace("y[i] = s;", "y[i] = s; *(volatile int*)0 = 1;")
    )
    assert main(["-q", "evolve", str(spec), "--storage", ":memory:", "--budget", "2"]) == 2
    assert "the reference fails" in capsys.readouterr().err


CPP_REF = """static inline void put(double& v, double x) { v = x; }
void psum(double* y, const double* x, int n) {
    for (int i = 0; i < n; ++i) {
        double s = 0.0;
        for (int k = 0; k <= i; ++k) s += x[k];
        put(y[i], s);
    }
}
"""


def test_nothing_correct_exits_1(tmp_path, capsys):
    # C++ the rewrites library does not parse: no proposal at all, nothing correct found
    spec = write_spec(tmp_path, 'language = "cpp"\n')
    (tmp_path / "psum.c").write_text(CPP_REF)
    assert main(["-q", "evolve", str(spec), "--budget", "2", "--storage", ":memory:"]) == 1
    out = capsys.readouterr().out
    assert "0 candidates evaluated" in out
    assert "no candidate beat the reference" in out
    assert "stopped early: no new program in 50 proposal rounds" in out
