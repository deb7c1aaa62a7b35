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


def test_bad_arguments_are_clear() -> None:
    table = load()
    with pytest.raises(SystemExit, match="unknown sampler"):
        table.main(["--samplers", "nope", "--quiet", "--json", ""])
    with pytest.raises(SystemExit, match="unknown function"):
        table.main(["--functions", "nope", "--samplers", "cmaes", "--quiet", "--json", ""])
