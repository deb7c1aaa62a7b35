"""``airda prompt calibrate / optimize`` through the command line's entry point."""

from __future__ import annotations

import json

import pytest

from airda.cli import main


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "task.toml"
    path.write_text('[task]\nbuiltin = "sentiment"\nn = 16\nseed = 0\n')
    return path


def test_help_lists_the_actions(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["prompt", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "calibrate" in out
    assert "optimize" in out


def test_calibrate_json(task_file, capsys, tiny_lm):
    assert main(["prompt", "calibrate", str(task_file), "--model", "tiny", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "sentiment"
    assert report["parse_rate"] == 1.0


def test_optimize_prints_verdicts_and_keeps_the_study(task_file, tmp_path, capsys, tiny_lm):
    db = tmp_path / "p.db"
    args = ["prompt", "optimize", str(task_file), "--model", "tiny", "--method", "fewshot"]
    args += ["--budget-calls", "8", "--minibatch", "2", "--storage", str(db), "--name", "cli"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "best vs start:" in out
    assert "best vs majority:" in out
    assert db.exists()


def test_errors_have_exit_codes(tmp_path, capsys):
    assert main(["prompt", "calibrate", str(tmp_path / "none.toml"), "--model", "tiny"]) == 1
    assert "no task file" in capsys.readouterr().err
    code = main(["prompt", "optimize", "sentiment", "--model", "tiny", "--budget-calls", "0"])
    assert code == 2
