"""TensorBoard: each finished trial as a run of the HParams dashboard.

:class:`TensorBoardCallback` is a study callback (``study.optimize(..., callbacks=[cb])``),
the counterpart of Optuna's ``TensorBoardCallback``, written with PyTorch's
``torch.utils.tensorboard.SummaryWriter`` (it needs the ``tensorboard`` package, not
TensorFlow). Each finished trial gets its own run folder, ``LOG_DIR/trial-N``, holding:

* the trial's parameters as the run's hyperparameters (the HParams plugin's session-start
  record, with the run name as its trial id and the trial's start time);
* its value as the scalar ``metric_name`` at step N (one scalar per objective), the HParams
  dashboard's metric column;
* its intermediate values (``trial.report``) as the scalar ``intermediate_value`` at their
  steps: learning curves in the Scalars dashboard, and pruned trials' last values in the table;
* the session's end: status success (complete or pruned) or failure, and the end time.

``tensorboard --logdir LOG_DIR`` then shows one row per trial in the HParams tab, with the
hyperparameter columns gathered from all trials (so trials of a define-by-run study that
asked different parameters share one table).

Example:
    >>> import tempfile, airda
    >>> from airda.space import Float
    >>> from airda.integrations.tensorboard import TensorBoardCallback
    >>> log_dir = tempfile.mkdtemp()
    >>> study = airda.create_study(space={"x": Float(-2, 2)}, seed=0)
    >>> study.optimize(lambda t: t["x"] ** 2, n_trials=3,
    ...                callbacks=[TensorBoardCallback(log_dir, metric_name="loss")])
    >>> sorted(p.name for p in __import__("pathlib").Path(log_dir).iterdir())
    ['trial-0', 'trial-1', 'trial-2']
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airda.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from airda.study import Study

__all__ = ["TensorBoardCallback"]

_MISSING = (
    "airda.integrations.tensorboard needs the tensorboard package (PyTorch's SummaryWriter "
    "writes with it): pip install 'airda-lab[tensorboard]' (or pip install tensorboard)"
)


def _hparam_value(value: Any) -> bool | int | float | str:
    """A value the HParams plugin stores: bool, number or string (others as JSON text)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return _hparam_value(value.item())
    return json.dumps(value, sort_keys=True, default=str)


def _metric_names(metric_name: str | Sequence[str], n: int) -> list[str]:
    if isinstance(metric_name, str):
        return [metric_name] if n == 1 else [f"{metric_name}_{i}" for i in range(n)]
    names = list(metric_name)
    if len(names) != n:
        raise ValueError(f"metric_name has {len(names)} names; the study has {n} objectives")
    return names


class TensorBoardCallback:
    """Write each finished trial of a study to TensorBoard, one run folder per trial.

    Args:
        log_dir: the folder ``tensorboard --logdir`` reads; created when missing.
        metric_name: the scalar tag of the objective's value (``"value"`` unless given, e.g.
            ``"val_loss"``); for several objectives, a list of names, one per objective, or one
            name that is numbered (``value_0``, ``value_1``).
        states: which finished trials to write; by default complete and pruned ones (a pruned
            trial's value is its last intermediate value). Add ``TrialState.FAIL`` to write
            failed trials too (parameters and any intermediate values; status failure).

    Runs are written once, when the trial finishes; a trial already written (a resumed
    study calling the callback again) is written again into the same folder, as new
    events, which TensorBoard reads as the same run.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        metric_name: str | Sequence[str] = "value",
        *,
        states: Iterable[TrialState] = (TrialState.COMPLETE, TrialState.PRUNED),
    ) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise ImportError(_MISSING) from None
        if isinstance(metric_name, str):
            if not metric_name:
                raise ValueError("metric_name must not be empty")
        elif not metric_name or not all(isinstance(m, str) and m for m in metric_name):
            raise TypeError(f"metric_name must be a name or a list of names, got {metric_name!r}")
        self.log_dir = Path(log_dir)
        self.metric_name = metric_name if isinstance(metric_name, str) else tuple(metric_name)
        self.states = frozenset(TrialState(s) for s in states)
        self._lock = threading.Lock()

    def run_dir(self, trial: FrozenTrial) -> Path:
        """The run folder of `trial`."""
        return self.log_dir / f"trial-{trial.number}"

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        if trial.state not in self.states:
            return
        with self._lock:
            self._write(study, trial)

    def _write(self, study: Study, trial: FrozenTrial) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2, summary_v2
        from torch.utils.tensorboard import SummaryWriter

        run = self.run_dir(trial)
        start = trial.datetime_start
        end = trial.datetime_complete
        hparams = {name: _hparam_value(v) for name, v in sorted(trial.params.items())}
        status = (
            api_pb2.STATUS_FAILURE if trial.state is TrialState.FAIL else api_pb2.STATUS_SUCCESS
        )
        end_info = plugin_data_pb2.HParamsPluginData(
            session_end_info=plugin_data_pb2.SessionEndInfo(
                status=status, end_time_secs=end if end is not None else 0.0
            )
        )
        session_end = Summary(
            value=[
                Summary.Value(
                    tag=metadata.SESSION_END_INFO_TAG,
                    metadata=metadata.create_summary_metadata(end_info),
                )
            ]
        )
        with SummaryWriter(log_dir=str(run)) as writer:
            writer.file_writer.add_summary(
                summary_v2.hparams_pb(hparams, trial_id=run.name, start_time_secs=start),
                global_step=0,
                walltime=start,
            )
            for step, value in sorted(trial.intermediate.items()):
                writer.add_scalar("intermediate_value", value, global_step=step, walltime=end)
            if trial.values is not None:
                names = _metric_names(self.metric_name, len(trial.values))
                for name, value in zip(names, trial.values, strict=True):
                    writer.add_scalar(name, value, global_step=trial.number, walltime=end)
            writer.file_writer.add_summary(session_end, global_step=0, walltime=end)


def read_hparams(run_dir: str | os.PathLike[str]) -> Mapping[str, Any]:
    """The hyperparameters stored in one run folder (for checks and scripts), read back with
    TensorBoard's own event reader: ``{"trial_id": ..., "hparams": {...}, "status": ...}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, metadata

    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    out: dict[str, Any] = {"trial_id": start.group_name, "hparams": {}}
    for name, v in start.hparams.items():
        kind = v.WhichOneof("kind")
        out["hparams"][name] = getattr(v, kind)
    if metadata.SESSION_END_INFO_TAG in content:
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        out["status"] = api_pb2.Status.Name(end.status)
    return out
