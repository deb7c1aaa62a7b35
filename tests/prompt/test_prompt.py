"""Prompts, their rendering and evaluation on a tiny real model; calibration; bad models."""

from __future__ import annotations

import pytest

from airda.prompt import (
    BudgetExhausted,
    CountedLM,
    Example,
    Prompt,
    builtin_task,
    calibrate,
    evaluate,
    start_prompt,
)
from airda.prompt._prompt import parse_reply


def test_prompt_checks_and_roundtrip():
    with pytest.raises(ValueError, match="unknown answer_format"):
        Prompt("x", answer_format="xml")
    with pytest.raises(ValueError, match="must differ"):
        Prompt("x", label_words={"a": "w", "b": "w"})
    p = Prompt("Say.", (Example("1", "a"),), "options", {"a": "A", "b": "B"})
    assert Prompt.from_dict(p.to_dict()) == p
    assert "Reply with one of: A, B." in p.system_text()


def test_parse_reply():
    p = Prompt(label_words={"positive": "good", "negative": "bad"})
    assert parse_reply(p, "I think... Answer: Good!", ["positive", "negative"]) == "positive"
    assert parse_reply(p, "no header here", ["positive", "negative"]) is None
    bare = Prompt(answer_format="bare")
    assert parse_reply(bare, "42\nmore", None) == "42"


def test_chat_render_uses_the_model_template(tiny_lm):
    p = Prompt(
        "Classify.",
        (Example("great", "positive"),),
        "answer",
        {"positive": "good", "negative": "bad"},
    )
    text = p.render("awful", tiny_lm)
    assert text.count("great") == 1
    assert "Answer: good" in text
    assert text.rstrip().endswith("assistant")


def test_score_mode_has_no_parse_failures(tiny_lm):
    task = builtin_task("sentiment", n=24)
    res = evaluate(start_prompt(task), tiny_lm, task.dev, task=task)
    assert res.parse_failures == 0
    assert res.parse_rate == 1.0
    assert len(res.scores) == len(task.dev)
    assert sum(res.spread.values()) == len(task.dev)
    assert set(res.spread) <= set(task.labels)


def test_never_parsable_model_is_recorded_not_hung(tiny_lm):
    # Random weights: replies never hold "Answer: <label word>".
    task = builtin_task("sentiment", n=24)
    res = evaluate(
        start_prompt(task), tiny_lm, task.dev[:3], task=task, mode="generate", max_tokens=4
    )
    assert res.parse_failures == 3
    assert res.mean == 0.0
    assert res.spread == {"<unparsed>": 3}


def test_empty_examples_are_refused(tiny_lm):
    with pytest.raises(ValueError, match="at least one example"):
        evaluate(Prompt(label_words={"a": "A", "b": "B"}), tiny_lm, [])


def test_counted_lm_refuses_over_budget(tiny_lm):
    task = builtin_task("sentiment", n=24)
    lm = CountedLM(tiny_lm, calls=4)
    with pytest.raises(BudgetExhausted, match="0 of 4 used, 6 more"):
        evaluate(start_prompt(task), lm, task.dev, task=task)
    evaluate(start_prompt(task), lm, task.dev[:4], task=task)
    assert lm.calls == 4
    assert lm.remaining == 0


def test_calibrate_reports_baselines(tiny_lm):
    task = builtin_task("parity", n=24)
    cal = calibrate(task, tiny_lm)
    assert cal.chance == 0.5
    assert cal.parse_rate == 1.0
    assert cal.majority_label in task.labels
    assert 0 <= cal.majority <= 1
    assert set(cal.per_word) == {"Yes/No", "True/False", "even/odd"}
    assert cal.calls == 4 * len(task.dev)
    assert ("OUT OF REACH" in str(cal)) != cal.in_reach
