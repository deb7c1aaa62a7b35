"""bench/mo_table.py runs end to end in its --quick mode, streams its runs and merges them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "mo_table.py"


def load():
    spec = importlib.util.spec_from_file_location("mo_table", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_and_merge(tmp_path, capsys) -> None:
    pytest.importorskip("optuna", reason="optuna is not installed (the peer compared against)")
    table = load()
    out = tmp_path / "t.json"
    result = table.main(["--quick", "--quiet", "--json", str(out)])
    text = capsys.readouterr().out
    assert "Median hypervolume ratio" in text
    assert "Wilcoxon" in text
    assert set(result["samplers"]) == {"airda-motpe", "airda-nsga2", "optuna-tpe", "optuna-nsga2"}
    assert len(result["runs"]) == 4 * 2 * 2
    for row in result["runs"]:
        assert set(row["hv_ratio"]) == {"20", "40"}
        # more trials never lose hypervolume; the true front bounds it
        assert 0.0 <= row["hv_ratio"]["20"] <= row["hv_ratio"]["40"] < 1.0
    groups = {(e["airda"], e["trials"], e["group"]) for e in result["paired_tests"]}
    assert ("airda-best", 40, "all") in groups
    assert ("airda-motpe", 20, "ZDT") in groups
    stored = json.loads(out.read_text())
    assert stored["samplers"] == result["samplers"]
    streamed = table.load_runs(str(out) + ".runs.jsonl")
    assert len(streamed) == len(result["runs"])
    # merge: a partial file with a truncated last line, and the results file
    part = tmp_path / "b.runs.jsonl"
    part.write_text("".join(json.dumps(r) + "\n" for r in streamed[:5]) + '{"trunc')
    capsys.readouterr()
    merged = table.main(["--merge", f"{part},{out}", "--json", ""])
    assert len(merged["runs"]) == len(result["runs"])
    assert merged["paired_tests"] == result["paired_tests"]
    # resume: nothing left to run
    again = table.main(["--quick", "--quiet", "--resume", "--json", str(out)])
    assert len(again["runs"]) == len(result["runs"])
    empty = tmp_path / "e.runs.jsonl"
    empty.write_text("")
    with pytest.raises(SystemExit, match="no runs"):
        table.main(["--merge", str(empty), "--json", ""])


def test_family_names() -> None:
    table = load()
    assert table.family("zdt4") == "ZDT"
    assert table.family("dtlz7_m3") == "DTLZ-3"
    assert table.family("wfg1_m2") == "WFG-2"
