"""bench/prompt_table.py builds its table and paired verdicts from stored runs (--merge)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "prompt_table.py"


def load():
    spec = importlib.util.spec_from_file_location("prompt_table", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(method: str, seed: int, scores: list[float], answers: dict[str, int]) -> dict:
    return {
        "task": "sentiment", "seed": seed, "method": method, "scores": scores,
        "majority_scores": [1.0, 0.0, 1.0, 0.0], "parse_failures": 0, "calls": 10,
        "spread": answers, "n": 80,
    }  # fmt: skip


def test_merge_pairs_runs_by_task_and_seed(tmp_path, capsys):
    runs = [
        run("airda-mipro", 0, [1.0, 1.0, 1.0, 0.0], {"positive": 2, "negative": 2}),
        run("dspy-bootstrap", 0, [1.0, 0.0, 1.0, 0.0], {"positive": 4}),
        run("airda-mipro", 1, [1.0, 1.0, 0.0, 1.0], {"positive": 3, "negative": 1}),
        # seed 1 has no DSPy run: it is left out of the paired table
    ]
    path = tmp_path / "a.runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert load().main(["--merge", str(path), "--peers", "dspy-bootstrap"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| sentiment"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "1"  # one seed with both methods
    assert cells[2] == "0.500"  # majority
    assert cells[4:6] == ["0.750 (0)", "0.500 (0)"]
    assert cells[6:8] == ["positive 2, negative 2", "positive 4"]
    assert "sentiment: airda-mipro vs dspy-bootstrap" in out
    assert "sentiment: airda-mipro vs majority" in out
