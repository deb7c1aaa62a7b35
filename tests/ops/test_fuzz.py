"""The fuzz of every op (airda.ops._fuzz): each op on each backend usable here, over wrong and
non-native dtypes, non-contiguous, unaligned and empty arrays, NaN and infinities, huge virtual
shapes, huge and negative counts, and wrong types, either answers what its reference answers or
refuses with a clear error, and never crashes. Each op runs in worker subprocesses, so that a
crash is reported against the input that caused it.

The figures are printed (``pytest -s``) and recorded as the ``fuzz`` property (``--junitxml``);
``python bench/fuzz_ops.py`` prints them per op and backend.
"""

from __future__ import annotations

from airda.ops import _fuzz
from airda.ops._registry import registered_ops

# Inputs per op that change two arguments at once, from a fixed seed: interactions (a
# non-native byte order in a non-contiguous copy, say) at a cost that keeps this test quick.
PAIRS = 60


def describe_failures(report: _fuzz.Report) -> str:
    lines = [report.summary()]
    for r in report.failures[:40]:
        lines.append(f"{r['verdict']} {r['op']} [{r['backend']}] {r['case']}: {r['detail'][:400]}")
    return "\n".join(lines)


def test_the_fuzz_finds_crashes_wrong_answers_and_unclear_errors():
    """An op with all three faults (see _fuzz._broken_op): the crash is attributed to its input,
    and the worker that replaces the crashed one runs the inputs after it."""
    report = _fuzz.run(["_broken"])
    crashes = [r for r in report.records if r["verdict"] == "crash"]
    assert [r["case"] for r in crashes] == ["x:None"]
    assert "exit code" in crashes[0]["detail"]
    wrong = {r["case"] for r in report.records if r["verdict"] == "wrong"}
    assert {"x:dtype-big-f8", "x:dtype-big-i8"} <= wrong
    unclear = {r["case"]: r["detail"] for r in report.records if r["verdict"] == "unclear"}
    assert "IndexError is not a clear refusal" in unclear["x:empty-axis-0"]
    assert "names no argument" in unclear["x:huge-axis-0"]
    after_crash = [r["case"] for r in report.records].index("x:None") + 1
    assert report.records[after_crash]["verdict"] in ("match", "refused")
    assert report.count("match")
    assert report.count("refused")


def test_every_registered_op_is_fuzzed():
    assert set(registered_ops()) <= set(_fuzz.op_names())


def test_every_op_answers_as_its_reference_or_refuses_clearly(record_property):
    report = _fuzz.run(pairs=PAIRS, seed=0)
    print()
    print(report.table())
    print(report.summary())
    record_property("fuzz", report.summary())
    assert set(_fuzz.op_names()) == {r["op"] for r in report.records}
    assert report.inputs > 4000
    assert not report.failures, describe_failures(report)
