"""airda.integrations.transformers under DDP: two CPU ranks (gloo) launched by torchrun, as HF
users launch them, each running this file's :func:`worker` (the whole script, as every rank
does). Rank 0 runs an SQLite study with ``optimize_distributed``; the other rank follows it.
Checked from the launching test: the trials' states, rank 0's suggestions on both ranks, one
report per evaluation (from rank 0 only), both ranks at the same global step in every trial
(the pruned one included), an error on rank 0 raised on both ranks, and a clean exit. The in-process tests check the single-process
path and the errors for set-ups that cannot work."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

if (
    importlib.util.find_spec("transformers") is None
    or importlib.util.find_spec("accelerate") is None
):
    pytest.skip("pip install 'airda-lab[lm]'", allow_module_level=True)
torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)
if not torch.distributed.is_gloo_available():  # pragma: no cover
    pytest.skip("torch.distributed has no gloo backend", allow_module_level=True)

import airda  # noqa: E402
from airda.schedulers import MedianStopping  # noqa: E402
from airda.trial import TrialState  # noqa: E402

STEPS = 6
EVAL_EVERY = 2
LRS = (0.02, 0.01, 1e-7)  # two that learn set the median; the third barely moves: pruned
N_TRIALS = len(LRS) + 1  # the last one suggests the seed with other bounds: fails on rank 0
STUDY = "ddp"


# ---- the script every rank runs (python -m torch.distributed.run ... this_file FOLDER) ------


def worker(folder: Path) -> None:
    torch.set_num_threads(1)
    from airda.lm._local import import_transformers

    transformers = import_transformers()
    from airda.integrations.transformers import TrialCallback, optimize_distributed
    from airda.study import Trial

    rank = int(os.environ["RANK"])
    # Every write of an intermediate value, from whichever rank, is logged.
    report = Trial.report

    def logged(self, step, value):
        with open(folder / "reports", "a") as f:
            f.write(f"{rank} {self.number} {step}\n")
        report(self, step, value)

    Trial.report = logged
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 30, (32, 8), generator=g)
    data = [{"input_ids": x, "labels": torch.tensor([3.0])} for x in ids]

    def objective(trial):
        run = {"number": trial.number, "rank": trial.rank, "world": trial.world_size}
        try:
            # Define-by-run: rank 0's study suggests, every rank gets its values. The seed is
            # drawn on rank 0 (and only recorded); the last trial asks it with other bounds,
            # which rank 0's study refuses, so both ranks raise.
            run["lr"] = trial.suggest_float("lr", 1e-7, 0.5, log=True)
            run["seed"] = trial.suggest_int("seed", 0, 10**6 if trial.number < len(LRS) else 9)
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
                output_dir=str(folder / f"trial-{trial.number}"),
                report_to="none",
                learning_rate=run["lr"],
                lr_scheduler_type="constant",
                max_steps=STEPS,
                eval_strategy="steps",
                eval_steps=EVAL_EVERY,
                save_strategy="no",
                logging_strategy="no",
                per_device_train_batch_size=8,
                per_device_eval_batch_size=16,
                use_cpu=True,
                ddp_backend="gloo",
                ddp_find_unused_parameters=False,
                disable_tqdm=True,
                seed=0,
            )
            trainer = transformers.Trainer(
                transformers.BertForSequenceClassification(config),
                args,
                train_dataset=data,
                eval_dataset=data,
                callbacks=[TrialCallback(trial)],
            )
            try:
                trainer.train()
            finally:
                run["global_step"] = trainer.state.global_step
            run["value"] = trainer.evaluate()["eval_loss"]
            return run["value"]
        except BaseException as exc:
            run["raised"] = type(exc).__name__
            raise
        finally:
            with open(folder / f"rank{rank}.jsonl", "a") as f:
                f.write(json.dumps(run) + "\n")

    study = None
    if rank == 0:
        study = airda.create_study(
            STUDY,
            storage=str(folder / "s.db"),
            strategy="random",
            seed=0,
            scheduler=MedianStopping(n_startup_trials=2),
        )
        for lr in LRS:
            study.enqueue({"lr": lr})
    optimize_distributed(study, objective, n_trials=N_TRIALS)
    with open(folder / f"rank{rank}.done", "w") as f:
        f.write(str(os.getpid()))


# ---- the tests ------------------------------------------------------------------------------


def _runs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_ranks_under_torchrun(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(Path(__file__).resolve()),
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert (tmp_path / "rank0.done").exists()
    assert (tmp_path / "rank1.done").exists()

    study = airda.load_study(STUDY, storage=str(tmp_path / "s.db"))
    trials = study.trials
    assert [t.state for t in trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
    ], [t.error for t in trials]
    assert "SpaceError" in trials[3].error
    assert "'seed' was suggested as" in trials[3].error
    evals = list(range(EVAL_EVERY, STEPS + 1, EVAL_EVERY))
    for t in trials[:2]:
        assert sorted(t.intermediate) == evals
        assert t.intermediate[STEPS] < t.intermediate[EVAL_EVERY]
    assert sorted(trials[2].intermediate) == [EVAL_EVERY]  # pruned at its first evaluation
    assert trials[2].intermediate[EVAL_EVERY] > max(t.intermediate[EVAL_EVERY] for t in trials[:2])
    assert trials[3].intermediate == {}

    # Every value was written once, by rank 0.
    reports = [
        tuple(map(int, line.split()))
        for line in (tmp_path / "reports").read_text().split("\n")
        if line
    ]
    assert reports == [(0, 0, s) for s in evals] + [(0, 1, s) for s in evals] + [(0, 2, EVAL_EVERY)]

    # Both ranks ran the objective once per trial, on the same parameters, and trained to the
    # same step: the pruned trial stopped at its first evaluation on both.
    by_rank = [_runs(tmp_path / f"rank{r}.jsonl") for r in (0, 1)]
    for r, runs in enumerate(by_rank):
        assert [run["number"] for run in runs] == list(range(N_TRIALS)), runs
        assert {(run["rank"], run["world"]) for run in runs} == {(r, 2)}
        assert [run.get("raised") for run in runs] == [None, None, "TrialPruned", "SpaceError"]
        assert [run.get("lr") for run in runs[: len(LRS)]] == list(LRS)
        assert [run.get("seed") for run in runs[: len(LRS)]] == [
            t.params["seed"] for t in trials[: len(LRS)]
        ]
        assert [run.get("global_step") for run in runs] == [STEPS, STEPS, EVAL_EVERY, None]
    for t, run0, run1 in zip(trials[:2], *(runs[:2] for runs in by_rank), strict=True):
        # The objective's final evaluation (gathered over the ranks) is the trial's value.
        assert t.value == pytest.approx(run0["value"])
        assert run0["value"] == run1["value"]
    assert trials[2].value == trials[2].intermediate[EVAL_EVERY]  # the last reported value
    print(f"two-rank torchrun run: {elapsed:.1f} s")


def test_a_process_launched_alone_runs_the_study_itself(tmp_path, monkeypatch):
    from airda.integrations.transformers import DistributedTrial, optimize_distributed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    seen = []

    def objective(trial):
        assert isinstance(trial, DistributedTrial)
        assert (trial.rank, trial.world_size) == (0, 1)
        seen.append(trial.number)
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(0, x)
        trial.set_user_attr("x", x)
        return x

    study = airda.create_study(storage=str(tmp_path / "s.db"), seed=0)
    optimize_distributed(study, objective, n_trials=3)
    assert seen == [0, 1, 2]
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    for t in study.trials:
        assert t.value == t.params["x"] == t.intermediate[0] == t.user_attrs["x"]
    with pytest.raises(ValueError, match="rank 0 needs the study"):
        optimize_distributed(None, objective, n_trials=1)


def test_set_ups_that_cannot_work_are_refused(monkeypatch):
    from airda.integrations.transformers import DistributedTrial, TrialCallback

    study = airda.create_study(seed=0)
    trial = study.ask()
    args = types.SimpleNamespace(world_size=2)
    # A plain trial in a multi-process Trainer: every rank would run its own.
    with pytest.raises(ValueError, match=r"runs 2 processes.*optimize_distributed"):
        TrialCallback(trial).on_train_begin(args, None, None)
    # A DistributedTrial made before torch.distributed knew of the other ranks.
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    alone = DistributedTrial(trial)
    with pytest.raises(ValueError, match="made in a world of 1"):
        TrialCallback(alone).on_train_begin(args, None, None)
    TrialCallback(alone).on_train_begin(types.SimpleNamespace(world_size=1), None, None)
    with pytest.raises(TypeError, match="wraps the study's trial"):
        DistributedTrial(None)
    # A rank of a torchrun launch whose process group is not initialised yet.
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not torch.distributed.is_initialized()
    with pytest.raises(RuntimeError, match=r"not initialised.*WORLD_SIZE=2.*optimize_distributed"):
        DistributedTrial(trial)


def test_rank_zero_errors_reach_the_other_ranks_as_raised():
    from airda.integrations.transformers import _portable
    from airda.space import SpaceError

    # An exception that pickles is raised as itself on the other ranks; one that does not
    # (a class local to a function) as RuntimeError with its type and text.
    err = SpaceError("parameter 'momentum' is not in the study's space")
    same = _portable(err)
    assert same is err

    class Local(Exception):
        pass

    text = _portable(Local("storage is gone"))
    assert type(text) is RuntimeError
    assert str(text) == "Local: storage is gone"


def test_messages_go_over_gloo_whatever_the_training_backend(monkeypatch):
    from airda.integrations import transformers as integ

    # Which group the trial's messages use, decided from the default group's backend (a
    # stand-in for torch.distributed: NCCL cannot run on this machine's CPUs).
    made = []

    def fake_dist(backend):
        world = object()
        return types.SimpleNamespace(
            group=types.SimpleNamespace(WORLD=world),
            get_backend=lambda: backend,
            new_group=lambda backend: made.append(backend) or f"group-{len(made)}",
        )

    monkeypatch.setattr(integ, "_control", None)
    gloo = fake_dist("gloo")
    assert integ._control_group(gloo) is None  # the default group itself
    mixed = fake_dist("cpu:gloo,cuda:nccl")
    assert integ._control_group(mixed) is None
    assert made == []
    nccl = fake_dist("nccl")
    assert integ._control_group(nccl) == "group-1"
    assert integ._control_group(nccl) == "group-1"  # made once per default group
    assert made == ["gloo"]
    assert integ._control_group(fake_dist("nccl")) == "group-2"  # a new default group


if __name__ == "__main__":
    worker(Path(sys.argv[1]))


def test_constraints_pass_through_to_the_study_trial(monkeypatch):
    from airda.integrations.transformers import DistributedTrial

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    study = airda.create_study(seed=0)
    trial = study.ask()
    proxy = DistributedTrial(trial)
    proxy.suggest_float("lr", 1e-4, 1e-1, log=True)
    proxy.set_constraint("latency", 0.5)
    assert study.tell(trial, 1.0).constraints == (0.5,)
    other = study.ask()
    DistributedTrial(other).set_constraints([-1.0])
    assert study.tell(other, 2.0).feasible
