"""airda.integrations.lightning under DDP: two CPU ranks forked by Lightning (``ddp_fork``,
gloo) from the objective's process, on a study in an SQLite file. Rank 0 alone reports, the
decision reaches every rank, both stop at the same epoch, and ``check_pruned`` raises
TrialPruned in the objective's process; other launchers and in-memory studies are refused."""

from __future__ import annotations

import os
import types

import pytest

pytest.importorskip("lightning", reason="pip install 'airda-lab[lightning]'")
torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

import airda  # noqa: E402
from airda.integrations.lightning import PRUNED_ATTR, PruningCallback, pl  # noqa: E402
from airda.schedulers import MedianStopping  # noqa: E402
from airda.space import Float  # noqa: E402
from airda.study._trial import Trial  # noqa: E402
from airda.trial import TrialState  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*LeafSpec.*:FutureWarning",
    "ignore::UserWarning",  # Lightning's advice on CPU DDP (num_workers, sync_dist, ...)
    "ignore::DeprecationWarning",
)

EPOCHS = 3


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


class Linear(pl.LightningModule):
    """Writes, per rank, the epochs it trained (each rank is its own process)."""

    def __init__(self, lr: float, out: str):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Linear(4, 1)
        self.lr = lr
        self.out = out

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y), sync_dist=True)

    def on_train_end(self):
        with open(f"{self.out}.rank{self.global_rank}", "w") as f:
            f.write(str(self.current_epoch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def test_rank_zero_reports_and_every_rank_stops(tmp_path, monkeypatch):
    # Every report, from whichever process, is logged (forked ranks inherit this patch).
    reports = tmp_path / "reports"
    report = Trial.report

    def logged(self, step, value):
        with open(reports, "a") as f:
            f.write(f"{self.number} {step} {os.getpid()}\n")
        report(self, step, value)

    monkeypatch.setattr(Trial, "report", logged)
    study = airda.create_study(
        storage=str(tmp_path / "s.db"),
        space={"lr": Float(1e-4, 1.0, log=True)},
        scheduler=MedianStopping(n_startup_trials=1),
        seed=0,
    )
    study.enqueue({"lr": 0.05})  # learns: completes
    study.enqueue({"lr": 1e-4})  # barely moves: pruned at its first validation
    data = _data()

    def objective(trial):
        callback = PruningCallback(trial, "val_loss")
        trainer = pl.Trainer(
            max_epochs=EPOCHS,
            accelerator="cpu",
            devices=2,
            strategy="ddp_fork",
            callbacks=[callback],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(Linear(trial["lr"], str(tmp_path / f"trial{trial.number}")), data, data)
        callback.check_pruned()
        return trainer.callback_metrics["val_loss"].item()

    study.optimize(objective, n_trials=2)
    done, pruned = study.trials
    assert done.state is TrialState.COMPLETE
    assert sorted(done.intermediate) == list(range(EPOCHS))
    assert done.value == pytest.approx(done.intermediate[EPOCHS - 1])
    assert pruned.state is TrialState.PRUNED
    assert sorted(pruned.intermediate) == [0]
    assert pruned.user_attrs[PRUNED_ATTR] == 0
    assert pruned.value == pruned.intermediate[0]  # the last reported value
    # One report per validation, all from one process (rank 0), not the objective's.
    lines = [line.split() for line in reports.read_text().splitlines()]
    assert [(int(n), int(s)) for n, s, _ in lines] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    pids = {pid for *_, pid in lines}
    assert len({pid for n, _, pid in lines if n == "0"}) == 1
    assert str(os.getpid()) not in pids
    # Both ranks of each trial trained the same epochs: the pruned one stopped after epoch 0.
    for number, epochs in ((0, EPOCHS), (1, 1)):
        ran = [(tmp_path / f"trial{number}.rank{r}").read_text() for r in (0, 1)]
        assert ran == [str(epochs)] * 2, (number, ran)


def _trainer(launcher, world=2):
    return types.SimpleNamespace(
        world_size=world,
        global_rank=0,
        strategy=types.SimpleNamespace(launcher=launcher),
    )


def test_other_launchers_and_in_memory_studies_are_refused(tmp_path):
    trial = airda.create_study(storage=str(tmp_path / "s.db"), seed=0).ask()
    callback = PruningCallback(trial)
    with pytest.raises(ValueError, match="2 processes started outside Lightning"):
        callback.on_fit_start(_trainer(None), None)
    script = types.SimpleNamespace(is_interactive_compatible=False)
    with pytest.raises(ValueError, match="each with its own objective and trial"):
        callback.on_fit_start(_trainer(script), None)
    fork = types.SimpleNamespace(is_interactive_compatible=True)
    callback.on_fit_start(_trainer(fork), None)  # accepted
    in_memory = airda.create_study(seed=0).ask()
    with pytest.raises(ValueError, match="in-memory study"):
        PruningCallback(in_memory).on_fit_start(_trainer(fork), None)


def test_check_pruned_does_nothing_for_an_unpruned_trial(tmp_path):
    trial = airda.create_study(storage=str(tmp_path / "s.db"), seed=0).ask()
    callback = PruningCallback(trial)
    callback.check_pruned()
    assert not callback.pruned
