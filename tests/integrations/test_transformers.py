"""airda.integrations.transformers: a tiny BERT built from a config (no download) in ``Trainer``
on CPU, evaluated every 2 steps and pruned by the study's scheduler."""

from __future__ import annotations

import doctest
import importlib.util

import pytest

if (
    importlib.util.find_spec("transformers") is None
    or importlib.util.find_spec("accelerate") is None
):
    pytest.skip("pip install 'airda-lab[lm]'", allow_module_level=True)

import torch
import transformers

import airda
from airda.integrations import transformers as integ
from airda.integrations.transformers import TrialCallback, suggest_training_args
from airda.schedulers import MedianStopping
from airda.space import Categorical, Fixed, Float, Int
from airda.trial import TrialState

STEPS = 6
EVAL_EVERY = 2


def _data():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 30, (32, 8), generator=g)
    # A regression target a few optimiser steps can learn (the mean), far from the initial 0.
    return [{"input_ids": x, "labels": torch.tensor([3.0])} for x in ids]


def _trainer(trial, tmp_path, callback, data):
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=30,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=8,
        num_labels=1,
    )
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / f"trial-{trial.number}"),
        report_to="none",
        learning_rate=trial["lr"],
        lr_scheduler_type="constant",
        max_steps=STEPS,
        eval_strategy="steps",
        eval_steps=EVAL_EVERY,
        save_strategy="no",
        logging_strategy="no",
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    model = transformers.BertForSequenceClassification(config)
    return transformers.Trainer(
        model, args, train_dataset=data, eval_dataset=data, callbacks=[callback]
    )


def _study(lrs):
    study = airda.create_study(
        space={"lr": Float(1e-7, 0.5, log=True)},
        seed=0,
        scheduler=MedianStopping(n_startup_trials=2),
    )
    for lr in lrs:
        study.enqueue({"lr": lr})
    return study


def test_objective_pattern_and_pruning(tmp_path):
    data = _data()
    trainers = {}
    finals = {}

    def objective(trial):
        trainer = _trainer(trial, tmp_path, TrialCallback(trial), data)
        trainers[trial.number] = trainer
        trainer.train()
        finals[trial.number] = trainer.evaluate()["eval_loss"]
        return finals[trial.number]

    # Two learning rates that fit the target set the median; the third barely moves.
    study = _study([0.01, 0.02, 1e-7])
    study.optimize(objective, n_trials=3)
    t0, t1, t2 = study.trials
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
    ], [t.error for t in study.trials]
    for t in (t0, t1):
        # Every evaluation during training is reported; the objective's own evaluate() is not.
        assert sorted(t.intermediate) == list(range(EVAL_EVERY, STEPS + 1, EVAL_EVERY))
        assert t.value == pytest.approx(finals[t.number])
        assert t.intermediate[STEPS] < t.intermediate[EVAL_EVERY]
    # Pruned at its first evaluation, and training stopped there.
    assert list(t2.intermediate) == [EVAL_EVERY]
    assert t2.intermediate[EVAL_EVERY] > max(
        t0.intermediate[EVAL_EVERY], t1.intermediate[EVAL_EVERY]
    )
    assert trainers[2].state.global_step == EVAL_EVERY
    assert trainers[0].state.global_step == STEPS
    assert 2 not in finals  # train() raised: the objective's last line never ran


def test_missing_metric_names_the_returned_ones(tmp_path):
    data = _data()
    study = _study([0.01])
    trial = study.ask()
    trainer = _trainer(trial, tmp_path, TrialCallback(trial, metric="accuracy"), data)
    with pytest.raises(ValueError, match=r"no 'eval_accuracy' \(it returned: .*eval_loss"):
        trainer.train()


def test_a_run_without_evaluation_warns(tmp_path):
    data = _data()
    trial = _study([0.01]).ask()
    trainer = _trainer(trial, tmp_path, TrialCallback(trial), data)
    trainer.args.eval_strategy = transformers.IntervalStrategy.NO
    with pytest.warns(UserWarning, match="no evaluation ran"):
        trainer.train()
    assert trial.intermediate == {}


def test_metric_name_takes_the_eval_prefix():
    trial = _study([0.01]).ask()
    assert TrialCallback(trial, "loss").metric == "eval_loss"
    assert TrialCallback(trial, "eval_f1").metric == "eval_f1"
    with pytest.raises(TypeError, match="metric"):
        TrialCallback(trial, "")


def test_suggest_training_args(tmp_path):
    space = {
        "learning_rate": Float(1e-5, 1e-2, log=True),
        "num_train_epochs": Int(1, 4),
        "lr_scheduler_type": Categorical(("linear", "cosine", "constant")),
        "weight_decay": Fixed(0.01),
    }
    # A study with a space: the trial's own values; define-by-run: suggested and recorded.
    fixed = airda.create_study(space={k: v for k, v in space.items() if k != "weight_decay"})
    trial = fixed.ask()
    got = suggest_training_args(trial, space)
    assert got == {**{k: trial.params[k] for k in trial.params}, "weight_decay": 0.01}
    free = airda.create_study(seed=0).ask()
    got = suggest_training_args(free, space)
    assert set(free.params) == {"learning_rate", "num_train_epochs", "lr_scheduler_type"}
    args = transformers.TrainingArguments(output_dir=str(tmp_path), report_to="none", **got)
    assert args.learning_rate == free.params["learning_rate"]
    assert args.num_train_epochs == free.params["num_train_epochs"]
    assert args.lr_scheduler_type.value == free.params["lr_scheduler_type"]
    with pytest.raises(ValueError, match="did you mean learning_rate"):
        suggest_training_args(free, {"learnin_rate": Float(0.1, 0.2)})
    with pytest.raises(TypeError, match="give a Float, Int, Categorical or Fixed"):
        suggest_training_args(free, {"seed": 3})


def test_docstring_example():
    result = doctest.testmod(integ, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
