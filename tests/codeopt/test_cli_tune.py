"""``airda tune c`` end to end on a tiny kernel."""

from __future__ import annotations

import json

import pytest

from airda._native import native_error
from airda.cli import main

pytestmark = pytest.mark.skipif(native_error() is not None, reason=f"{native_error()}")

KERNEL = """
void scale(float* y, const float* x, int n) {
    int i = 0;
    for (; i + UNROLL <= n; i += UNROLL)
        for (int u = 0; u < UNROLL; ++u) y[i + u] = 3.0f * x[i + u];
    for (; i < n; ++i) y[i] = 3.0f * x[i] + (BUG ? 1.0f : 0.0f);
}
"""
REF = "void scale(float* y, const float* x, int n) { for (int i = 0; i < n; ++i) y[i] = 3*x[i]; }"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "k.c").write_text(KERNEL)
    (tmp_path / "ref.c").write_text(REF)
    return tmp_path


def _argv(d, *extra):
    return [
        "tune", "c", str(d / "k.c"), "--entry", "scale", "--define", "N=37", "--define", "BUG=0",
        "--arg", "float32[N]:zeros:out", "--arg", "float32[N]", "--arg", "int32=N",
        "--param", "UNROLL=1,2,4", "--flags", "-O1|-O2", "--reference", str(d / "ref.c"),
        "--max-time", "0.01", "--storage", str(d / "s.db"), *extra,
    ]  # fmt: skip


def test_cli_prints_best_speedup_and_table(files, capsys):
    assert main(_argv(files, "--budget", "4", "--strategy", "grid")) == 0
    out = capsys.readouterr().out
    assert "best: UNROLL=" in out
    assert "speed-up" in out
    assert "median" in out
    assert "95% CI" in out
    assert out.count("\n") > 6
    # The second run is answered from the stored study.
    assert main(_argv(files, "--budget", "4", "--strategy", "grid")) == 0
    assert "0 measured now, 4 from storage" in capsys.readouterr().out


def test_cli_json_and_wrong_variants(files, capsys):
    argv = _argv(files, "--json", "--strategy", "grid")
    argv[argv.index("BUG=0")] = "BUG=1"  # the remainder loop is wrong for UNROLL 2 and 4
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["best_params"]["UNROLL"] == 1
    failed = [v for v in doc["variants"] if v["state"] == "fail"]
    assert len(failed) == 4
    assert all("max abs error 1" in v["error"] for v in failed)


def test_cli_toml_form(files, capsys):
    (files / "tune.toml").write_text(
        """
[tune]
kernel = "k.c"
reference = "ref.c"
entry = "scale"
defines = { N = 16, BUG = 0 }
args = ["float32[N]:zeros:out", "float32[N]", "int32=N"]
params = { UNROLL = [1, 4] }
flags = "-O1|-O2"
budget = 3
max_time = 0.01
storage = "memory://"
strategy = "grid"
"""
    )
    assert main(["tune", "c", str(files / "tune.toml")]) == 0
    out = capsys.readouterr().out
    assert "3 variants" in out
    assert "best:" in out


def test_cli_budget_in_seconds(files, capsys):
    assert main(_argv(files, "--budget", "60s")) == 0
    assert "6 variants" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--budget", "lots"], "--budget"),
        (["--param", "X"], "NAME=VALUE"),
        (["--arg", "float32[Q]"], "unknown name 'Q'"),
    ],
)
def test_cli_bad_input_exits_1(files, capsys, change, message):
    assert main(_argv(files, *change)) == 1
    assert message in capsys.readouterr().err


def test_cli_missing_entry_and_file(files, capsys):
    assert main(["tune", "c", str(files / "k.c"), "--arg", "int32=1"]) == 1
    assert "--entry is required" in capsys.readouterr().err
    argv = _argv(files)
    argv[2] = str(files / "nope.c")
    assert main(argv) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_no_correct_variant_exits_1(files, capsys):
    argv = _argv(files, "--param", "UNROLL=2,4")
    argv[argv.index("BUG=0")] = "BUG=1"
    assert main(argv) == 1
    assert "no variant passed" in capsys.readouterr().out


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["tune", "c", "--help"])
    assert info.value.code == 0
    assert "DTYPE[SHAPE]" in capsys.readouterr().out


def test_cli_cpu_clock_flush_and_no_race(files, capsys):
    argv = _argv(files, "--clock", "cpu", "--flush", "--no-race", "--budget", "2", "--json")
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["variants"]) == 2
    assert not any(v["raced_out"] for v in doc["variants"])


def test_cli_sandbox_limits_and_env(files, capsys, monkeypatch):
    monkeypatch.setenv("KEEP_ME", "1")
    extra = [
        "--memory-limit", "4G", "--cpu-limit", "100", "--file-size-limit", "1M",
        "--process-limit", "64", "--output-limit", "64K", "--env", "KEEP_ME", "--env", "X=2",
        "--budget", "1", "--json",
    ]  # fmt: skip
    assert main(_argv(files, *extra)) == 0
    assert len(json.loads(capsys.readouterr().out)["variants"]) == 1
    assert main(_argv(files, "--memory-limit", "lots")) == 1
    assert "--memory-limit must be a size like 512M" in capsys.readouterr().err
    assert main(_argv(files, "--cpu-limit", "-3")) == 1
    assert "--cpu-limit must be a positive number" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--arg", "float32[10**10**10]"], "too large"),
        (["--arg", "float32[2**40]"], "needs 4 TiB"),
        (["--param", "UNROLLL=1,2"], "'UNROLLL' does not appear in the kernel source"),
    ],
)
def test_cli_bounded_shapes_and_unused_params(files, capsys, change, message):
    assert main(_argv(files, *change)) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "change", [["--jobs", "-2"], ["--jobs", "0"], ["--variant-timeout", "0"], ["--jobs", "x"]]
)
def test_cli_jobs_and_variant_timeout_are_validated(files, capsys, change):
    with pytest.raises(SystemExit) as info:
        main(_argv(files, *change))
    assert info.value.code == 2
    assert change[0] in capsys.readouterr().err


def test_cli_toml_jobs_are_validated(files, capsys):
    (files / "tune.toml").write_text(
        'kernel = "k.c"\nentry = "scale"\nargs = ["float32[4]:zeros:out", "float32[4]", '
        '"int32=4"]\ndefines = { BUG = 0 }\nparams = { UNROLL = [1] }\njobs = -2\n'
    )
    assert main(["tune", "c", str(files / "tune.toml")]) == 1
    assert "jobs must be a positive number" in capsys.readouterr().err


def test_cli_progress_has_rate_and_eta_off_a_terminal(files, monkeypatch, capsys):
    # Off a terminal the progress is log lines on stderr (here one per variant: interval 0).
    monkeypatch.setenv("AIRDA_PROGRESS_INTERVAL", "0")
    assert main(_argv(files, "--budget", "2", "--strategy", "grid")) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "tuning scale" in line]
    assert lines
    assert "variants/s" in lines[0]
    assert "ETA" in lines[0]
