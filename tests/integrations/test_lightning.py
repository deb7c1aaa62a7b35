"""airda.integrations.lightning: a tiny LightningModule on CPU, pruned by the study's scheduler."""

from __future__ import annotations

import doctest
import importlib.util
import sys
import types

import pytest

pytest.importorskip("lightning", reason="pip install 'airda-lab[lightning]'")
torch = pytest.importorskip("torch")

import airda  # noqa: E402
from airda.integrations import lightning as integ  # noqa: E402
from airda.integrations.lightning import PruningCallback, pl  # noqa: E402
from airda.schedulers import ASHA, MedianStopping  # noqa: E402
from airda.space import Float  # noqa: E402
from airda.trial import TrialState  # noqa: E402

# Lightning 2.6 asks torch's pytree about LeafSpec, which torch >= 2.10 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")

EPOCHS = 3
BATCHES = 4


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16 * BATCHES, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=16)


def _module_class(lightning):
    class Linear(lightning.LightningModule):
        def __init__(self, lr: float):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(4, 1)
            self.lr = lr

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

        def validation_step(self, batch, _):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.lr)

    return Linear


Linear = _module_class(pl)


def _trainer(lightning, callback, **kw):
    return lightning.Trainer(
        max_epochs=EPOCHS,
        callbacks=[callback],
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kw,
    )


def _study(lrs):
    study = airda.create_study(
        space={"lr": Float(1e-6, 0.5, log=True)},
        seed=0,
        scheduler=MedianStopping(n_startup_trials=2),
    )
    for lr in lrs:
        study.enqueue({"lr": lr})
    return study


def test_pruned_trial_ends_pruned_with_its_intermediate_values():
    data = _data()
    stopped_at = {}

    def objective(trial):
        callback = PruningCallback(trial, monitor="val_loss")
        trainer = _trainer(pl, callback)
        try:
            trainer.fit(Linear(trial["lr"]), data, data)
        finally:
            stopped_at[trial.number] = trainer.current_epoch
        return trainer.callback_metrics["val_loss"].item()

    # Two good learning rates set the median; the third barely moves and is pruned at once.
    study = _study([0.05, 0.08, 1e-6])
    study.optimize(objective, n_trials=3)
    t0, t1, t2 = study.trials
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.COMPLETE,
        TrialState.PRUNED,
    ]
    for t in (t0, t1):
        assert sorted(t.intermediate) == list(range(EPOCHS))
        assert t.value == pytest.approx(t.intermediate[EPOCHS - 1])
        assert t.intermediate[EPOCHS - 1] < t.intermediate[0]
    # Pruned after the first epoch's validation: one value stored, training stopped there.
    assert list(t2.intermediate) == [0]
    assert t2.intermediate[0] > max(t0.intermediate[0], t1.intermediate[0])
    assert stopped_at[2] == 0
    assert stopped_at[0] == EPOCHS


def test_reports_global_steps_when_asked():
    data = _data()
    study = _study([0.05])

    def objective(trial):
        trainer = _trainer(pl, PruningCallback(trial, "val_loss", step="global_step"))
        trainer.fit(Linear(trial["lr"]), data, data)
        return trainer.callback_metrics["val_loss"].item()

    study.optimize(objective, n_trials=1)
    assert sorted(study.trials[0].intermediate) == [BATCHES * (e + 1) for e in range(EPOCHS)]


def test_asha_on_global_steps():
    # A budget scheduler: the step is the resource spent (optimiser steps), rungs at 4 and 12.
    data = _data()
    study = airda.create_study(
        space={"lr": Float(1e-6, 0.5, log=True)},
        scheduler=ASHA(min_resource=BATCHES, max_resource=BATCHES * EPOCHS, reduction_factor=3),
    )
    for lr in (0.08, 1e-6):
        study.enqueue({"lr": lr})

    def objective(trial):
        trainer = _trainer(pl, PruningCallback(trial, "val_loss", step="global_step"))
        trainer.fit(Linear(trial["lr"]), data, data)
        return trainer.callback_metrics["val_loss"].item()

    study.optimize(objective, n_trials=2)
    good, bad = study.trials
    assert good.state is TrialState.COMPLETE
    assert sorted(good.intermediate) == [4, 8, 12]
    # Worse than the only other trial at the first rung: stopped there, after 4 steps.
    assert bad.state is TrialState.PRUNED
    assert list(bad.intermediate) == [BATCHES]


def test_missing_metric_names_the_logged_ones():
    data = _data()
    study = _study([0.05])
    trial = study.ask()
    trainer = _trainer(pl, PruningCallback(trial, monitor="val_acc"))
    with pytest.raises(ValueError, match=r"'val_acc' was not logged .*logged: val_loss"):
        trainer.fit(Linear(trial["lr"]), data, data)


def test_missing_metric_fails_the_trial_with_that_reason():
    data = _data()
    study = _study([0.05])

    def objective(trial):
        trainer = _trainer(pl, PruningCallback(trial, monitor="val_acc"))
        trainer.fit(Linear(trial["lr"]), data, data)
        return 0.0

    study.optimize(objective, n_trials=1)
    (t,) = study.trials
    assert t.state is TrialState.FAIL
    assert "val_acc" in t.error
    assert "val_loss" in t.error


def test_arguments_are_checked():
    trial = _study([0.05]).ask()
    with pytest.raises(ValueError, match="step must be one of"):
        PruningCallback(trial, "val_loss", step="batch")
    with pytest.raises(TypeError, match="monitor"):
        PruningCallback(trial, "")


def test_distributed_trainers_are_refused():
    # Ranks that do not share the trial (forked ranks are tested in test_lightning_ddp.py).
    trial = _study([0.05]).ask()
    ddp = types.SimpleNamespace(world_size=2, strategy=types.SimpleNamespace())
    with pytest.raises(ValueError, match="this trainer runs 2 processes started outside"):
        PruningCallback(trial).on_fit_start(ddp, None)


@pytest.mark.filterwarnings("ignore:You defined a `validation_step` but have no `val_dataloader`")
def test_a_fit_without_validation_warns():
    data = _data()
    trial = _study([0.05]).ask()
    trainer = _trainer(pl, PruningCallback(trial, "val_loss"))
    with pytest.warns(UserWarning, match="no validation ran"):
        trainer.fit(Linear(trial["lr"]), data)
    assert trial.intermediate == {}


def test_falls_back_to_pytorch_lightning(monkeypatch):
    pytest.importorskip("pytorch_lightning")
    # The module, loaded afresh where `lightning` cannot be imported, takes pytorch_lightning.
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "lightning.pytorch", None)
    spec = importlib.util.spec_from_file_location("_airda_pl_fallback", integ.__file__)
    fallback = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fallback)
    import pytorch_lightning

    assert fallback.pl is pytorch_lightning
    assert issubclass(fallback.PruningCallback, pytorch_lightning.Callback)

    data = _data()
    study = _study([0.05, 0.08, 1e-6])
    module_class = _module_class(pytorch_lightning)

    def objective(trial):
        trainer = _trainer(pytorch_lightning, fallback.PruningCallback(trial, "val_loss"))
        trainer.fit(module_class(trial["lr"]), data, data)
        return trainer.callback_metrics["val_loss"].item()

    study.optimize(objective, n_trials=3)
    assert [t.state for t in study.trials][-1] is TrialState.PRUNED


def test_docstring_example():
    result = doctest.testmod(integ, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
