"""The `airda` command: info, demo, help and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airda.cli import main


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "info" in capsys.readouterr().out


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_info_reports_backends(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "airda._C:" in out
    assert "cpu        usable" in out
    assert "reference  usable" in out
    assert "pack_sign_bits" in out
    assert "hamming_gram" in out


def test_info_json():
    out = subprocess.run(
        [sys.executable, "-m", "airda.cli", "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out)
    assert report["backends"]["cpu"] == "usable"
    # Without a GPU the CLI runs Triton on the CPU interpreter, and says so.
    assert report["backends"]["triton"].startswith("usable")
    assert report["ops"]["hamming_gram"]["reference"] is True
    if report["cuda"]["built"] and not report["cuda"]["devices"]:
        assert report["backends"]["cuda"].startswith("unavailable: ")
        assert report["cuda"]["error"]


def test_demo_runs_and_ranks_models(capsys):
    assert main(["demo", "--batch", "6"]) == 0
    out = capsys.readouterr().out
    assert "best by NASWOT:" in out
    assert "cnn-6x64" in out


def test_demo_with_bad_batch_exits_1(capsys):
    assert main(["demo", "--batch", "1"]) == 1
    assert "--batch must be at least 2" in capsys.readouterr().err
