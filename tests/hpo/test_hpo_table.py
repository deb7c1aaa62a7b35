"""bench/hpo_table.py runs end to end in its --quick mode and writes its table and JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "hpo_table.py"


def load():
    spec = importlib.util.spec_from_file_location("hpo_table", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run(tmp_path, capsys) -> None:
    table = load()
    out = tmp_path / "t.json"
    result = table.main(["--quick", "--quiet", "--json", str(out)])
    text = capsys.readouterr().out
    assert "Median regret" in text
    assert "ms per ask" in text
    stored = json.loads(out.read_text())
    assert stored["samplers"] == result["samplers"]
    assert {"cmaes", "gp"} <= set(result["samplers"])
    for row in result["regret_runs"]:
        assert set(row["regret"]) == {"20", "40"}
        assert row["regret"]["40"] <= row["regret"]["20"]
    assert result["full_run_estimate_hours"] > 0
    # every finished run was also streamed, one JSON line each
    streamed = table.load_runs(str(out) + ".runs.jsonl")
    assert len(streamed) == len(result["regret_runs"])


def test_merge_builds_tables_from_partial_runs(tmp_path, capsys) -> None:
    table = load()
    first = tmp_path / "a.json"
    table.main(["--quick", "--quiet", "--json", str(first), "--timing", ""])
    rows = table.load_runs(str(first))
    airda_rows = [r for r in rows if not r["sampler"].startswith("optuna")]
    optuna_rows = [r for r in rows if r["sampler"].startswith("optuna")]
    part = tmp_path / "b.runs.jsonl"
    part.write_text("".join(json.dumps(r) + "\n" for r in optuna_rows) + '{"trunc')
    solo = tmp_path / "c.json"
    solo.write_text(json.dumps({"regret_runs": airda_rows}))
    capsys.readouterr()
    merged = table.main(["--merge", f"{solo},{part}", "--json", ""])
    assert len(merged["regret_runs"]) == len(rows)  # the truncated line is skipped
    assert merged["paired_tests"] == table.paired_tests(rows, merged["trials"])
    assert "Median regret" in capsys.readouterr().out
    empty = tmp_path / "empty.runs.jsonl"
    empty.write_text("")
    with pytest.raises(SystemExit, match="no regret runs"):
        table.main(["--merge", str(empty), "--json", ""])
    with pytest.raises(SystemExit, match="no such file"):
        table.main(["--merge", str(tmp_path / "missing.json"), "--json", ""])


def test_bad_arguments_are_clear() -> None:
    table = load()
    with pytest.raises(SystemExit, match="unknown sampler"):
        table.main(["--samplers", "nope", "--quiet", "--json", ""])
    with pytest.raises(SystemExit, match="unknown function"):
        table.main(["--functions", "nope", "--samplers", "cmaes", "--quiet", "--json", ""])
