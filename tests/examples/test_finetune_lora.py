"""airda.examples.finetune_lora: the noun split of the data, and the LoRA search end to end with
ASHA + TPE through the Trainer callback on a tiny random Llama built from a config (no
download; the SmolLM2 run is bench/finetune_lora.py's)."""

from __future__ import annotations

import doctest
import importlib.util

import pytest

if any(
    importlib.util.find_spec(m) is None
    for m in ("transformers", "accelerate", "peft", "tokenizers")
):
    pytest.skip("pip install 'airda-lab[finetune]'", allow_module_level=True)

import torch

import airda
from airda.examples import finetune_lora as ft
from airda.schedulers import ASHA
from airda.strategies.tpe import TPE
from airda.trial import TrialState

# peft 0.21 asks transformers 5 for a renamed attribute when it wraps a model.
pytestmark = pytest.mark.filterwarnings(
    "ignore:.*is_gradient_checkpointing.*:FutureWarning",
)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_category_data_holds_nouns_out_of_training():
    d = ft.category_data(eval_nouns_per_class=3, seed=1)
    assert d.labels == ["animal", "fruit", "vehicle"]
    assert len(d.held_out) == 9
    assert not {t.split()[-1].lower() for t in d.train_texts} & set(d.held_out)
    assert {t.split()[-1].lower() for t in d.eval_texts} == set(d.held_out)
    assert len(set(d.train_texts)) == len(d.train_texts) == 105
    assert sorted(set(d.eval_labels)) == [0, 1, 2]
    assert d.held_out != ft.category_data(seed=2).held_out
    assert d.steps_per_epoch(8) == 14
    assert d.max_steps(8, epochs=3) == 42
    with pytest.raises(ValueError, match="eval_nouns_per_class"):
        ft.category_data(eval_nouns_per_class=10)


def test_asha_tpe_search_reports_every_eval_and_stops_pruned_trials(tmp_path):
    data = ft.category_data().subset(16, 8)
    base, _ = ft.load_base(len(data.labels), "tiny")
    before = {k: v.clone() for k, v in base.state_dict().items()}
    costs: list[ft.TrialCost] = []
    objective = ft.make_objective(
        data, model="tiny", eval_steps=1, costs=costs, output_dir=str(tmp_path)
    )
    top = data.max_steps(batch_size=8, epochs=3)  # 2 steps an epoch
    study = airda.create_study(
        direction="maximize",
        space=ft.SPACE,
        strategy=TPE(n_startup_trials=2, seed=0),
        scheduler=ASHA(min_resource=1, max_resource=top, reduction_factor=3),
    )
    study.optimize(objective, n_trials=5)

    assert len(costs) == len(study.trials) == 5
    spent = {c.number: c for c in costs}
    for t in study.trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED), t
        c = spent[t.number]
        # one report per optimiser step; a trial ends at its epochs or where it was pruned
        assert sorted(t.intermediate) == list(range(1, c.steps + 1))
        assert all(0.0 <= v <= 1.0 for v in t.intermediate.values())
        assert c.pruned == (t.state == TrialState.PRUNED)
        if t.state == TrialState.COMPLETE:
            assert c.steps == 2 * t.params["num_train_epochs"]
            assert t.value == t.intermediate[c.steps]
        else:
            assert c.steps < 2 * t.params["num_train_epochs"]
        assert t.params["lora_r"] in ft.LORA_RANKS
        assert t.params["lr_scheduler_type"] in ("linear", "cosine", "constant")
        assert 1e-5 <= t.params["learning_rate"] <= 1e-2
    states = [t.state for t in study.trials]
    assert TrialState.PRUNED in states  # ASHA stopped trials through the Trainer callback
    assert TrialState.COMPLETE in states
    # trials train LoRA copies: the shared base model is untouched
    after = base.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="'smollm2' or 'tiny'"):
        ft.load_base(3, "gpt2")


def test_docstring_examples():
    result = doctest.testmod(ft, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3
    assert result.failed == 0
