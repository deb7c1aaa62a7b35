"""Optimisers as studies, on a tiny real model: budgets, records, the locked test split,
resuming, failures with reasons; one end-to-end run on SmolLM2."""

from __future__ import annotations

import pytest

import airda
from airda.eval import test_reads
from airda.prompt import METHODS, Prompt, builtin_task, optimize
from airda.prompt._optimize import clean_instruction
from airda.trial import TrialState


@pytest.fixture(scope="module")
def task():
    return builtin_task("sentiment", n=16, seed=1)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_a_budgeted_study(task, tiny_lm, method):
    res = optimize(task, tiny_lm, method, budget_calls=16, minibatch=2, seed=0, proposal_tokens=4)
    assert res.calls <= 16
    assert res.n_trials >= 1
    assert 0.0 <= res.test_best.mean <= 1.0
    assert res.test_best.parse_failures == 0
    assert res.vs_start.n_candidate == len(res.test_best.scores) == res.vs_majority.n_candidate
    assert res.dev_best >= res.dev_start


def test_trials_hold_the_prompt_and_test_reads_are_recorded(task, tiny_lm, tmp_path):
    db = tmp_path / "p.db"
    res = optimize(
        task, tiny_lm, "ape", budget_calls=12, storage=db, minibatch=2, proposal_tokens=4
    )
    study = airda.load_study(res.study_name, storage=db)
    done = [t for t in study.trials if t.state is TrialState.COMPLETE]
    assert done
    assert all("prompt" in t.user_attrs and "prompt_json" in t.user_attrs for t in done)
    reads = test_reads(study)
    assert len(reads) == 1
    assert reads[0]["n_trials"] == len(study.trials)
    assert study.user_attrs["result"]["test_best"] == pytest.approx(res.test_best.mean)


def test_resume_continues_with_the_spent_budget(task, tiny_lm, tmp_path):
    db = tmp_path / "p.db"
    first = optimize(
        task,
        tiny_lm,
        "mipro",
        budget_calls=16,
        storage=db,
        name="r",
        minibatch=2,
        proposal_tokens=4,
    )
    again = optimize(
        task,
        tiny_lm,
        "mipro",
        budget_calls=24,
        storage=db,
        name="r",
        minibatch=2,
        proposal_tokens=4,
    )
    assert first.calls <= 16 < again.calls <= 24
    assert again.n_trials > first.n_trials
    assert again.dev_best >= first.dev_best


def test_unparsable_model_fails_trials_with_a_reason(task, tiny_lm, tmp_path):
    # Random weights never write "Answer: <label word>": every trial fails, saying why.
    db = tmp_path / "p.db"
    res = optimize(
        task,
        tiny_lm,
        "opro",
        budget_calls=8,
        mode="generate",
        minibatch=2,
        proposal_tokens=4,
        storage=db,
        name="unparsable",
    )
    assert res.test_best.parse_failures == len(res.test_best.scores)
    failed = [t for t in airda.load_study("unparsable", storage=db).trials]
    assert failed
    assert all(t.state is TrialState.FAIL for t in failed)
    assert all("no parsable answer" in t.error for t in failed)


def test_bad_arguments(task, tiny_lm):
    with pytest.raises(ValueError, match="unknown method"):
        optimize(task, tiny_lm, "magic")
    with pytest.raises(ValueError, match="below the dev split's size"):
        optimize(task, tiny_lm, "ape", budget_calls=2)


def test_clean_instruction():
    assert clean_instruction("<prompt>Add them.</prompt>") == "Add them."
    assert clean_instruction("New instruction: Be brief.\nx") == "Be brief."
    assert clean_instruction("  \n ") == ""


def test_start_prompt_is_the_tasks_first_words(task):
    from airda.prompt import start_prompt

    p = start_prompt(task)
    assert isinstance(p, Prompt)
    assert p.label_words == {"positive": "Yes", "negative": "No"}


@pytest.mark.slow
def test_sentiment_end_to_end_on_smollm2(smollm2):
    task = builtin_task("sentiment", n=48, seed=0)
    res = optimize(task, smollm2, "mipro", budget_calls=60, minibatch=6, seed=0)
    assert res.test_best.parse_failures == 0
    assert res.calls <= 60
    # Label words and format are searched: the best prompt is not worse on dev than the start.
    assert res.dev_best >= res.dev_start
