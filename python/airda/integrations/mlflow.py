"""MLflow: one MLflow run per finished trial, optionally nested under a run per study.

:class:`MLflowCallback` is a study callback (``study.optimize(..., callbacks=[cb])``), the
counterpart of Optuna's ``MLflowCallback``. Each finished trial becomes one run (named after
the trial number, with the trial's start and end times) in an experiment named after the study,
holding:

* params: the trial's parameters (non-scalar values as JSON text);
* metrics: its value as ``metric_name`` (``value`` by default; one per objective), and its
  intermediate values (``trial.report``) as ``intermediate_value`` at their steps;
* tags: ``study_name``, ``number``, ``state``, ``direction`` (as Optuna's), the trial's user
  attributes, and ``airda.worker`` where it ran;
* status: ``FINISHED`` for complete and pruned trials, ``FAILED`` for failed ones.

With ``nest_trials=True`` the trial runs are children of one parent run per study: the run
that is active when the callback is called (``with mlflow.start_run(): study.optimize(...)``,
as in Optuna), or else a run named after the study, created on first use and found again by
its ``airda.study`` tag (a resumed study or another driver adds to the same parent). The
parent run carries the study's best value so far as the metric ``best_<metric_name>``.

The callback talks to MLflow through an ``MlflowClient`` for `tracking_uri`, so it does not
change the process's global tracking URI or active run.

Example:
    >>> import os, tempfile, airda, mlflow
    >>> from airda.space import Float
    >>> from airda.integrations.mlflow import MLflowCallback
    >>> os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # plain folders, for this example
    >>> uri = f"file:{tempfile.mkdtemp()}"
    >>> study = airda.create_study("quad", space={"x": Float(-2, 2)}, seed=0)
    >>> study.optimize(lambda t: t["x"] ** 2, n_trials=3,
    ...                callbacks=[MLflowCallback(uri, metric_name="loss")])
    >>> client = mlflow.MlflowClient(uri)
    >>> runs = client.search_runs([client.get_experiment_by_name("quad").experiment_id])
    >>> sorted((r.info.run_name, r.data.tags["state"], "loss" in r.data.metrics) for r in runs)
    [('0', 'COMPLETE', True), ('1', 'COMPLETE', True), ('2', 'COMPLETE', True)]
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airda.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from airda.study import Study

__all__ = ["MLflowCallback"]

_MISSING = (
    "airda.integrations.mlflow needs MLflow: pip install 'airda-lab[mlflow]' "
    "(or pip install mlflow-skinny; mlflow-skinny is enough for file, SQLite and server stores)"
)
_STUDY_TAG = "airda.study"
_PARENT_TAG = "airda.parent"


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ImportError(_MISSING) from None
    return mlflow


def _text(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _metric_names(metric_name: str | Sequence[str], n: int) -> list[str]:
    if isinstance(metric_name, str):
        return [metric_name] if n == 1 else [f"{metric_name}_{i}" for i in range(n)]
    names = list(metric_name)
    if len(names) != n:
        raise ValueError(f"metric_name has {len(names)} names; the study has {n} objectives")
    return names


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


class MLflowCallback:
    """Log each finished trial of a study as an MLflow run.

    Args:
        tracking_uri: where MLflow stores runs (``sqlite:///mlflow.db``, ``http://host:5000``,
            ``file:/path``); None for MLflow's default (``MLFLOW_TRACKING_URI``).
        metric_name: the name of the objective's value; for several objectives, a list of
            names, one per objective, or one name that is numbered (``value_0``, ``value_1``).
        experiment: the MLflow experiment's name; the study's name when None. Created when
            missing.
        nest_trials: make trial runs children of a parent run per study (see the module).
        tag_user_attrs: add the trial's user attributes as tags.
        states: which finished trials to log; by default all (complete, pruned, failed).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        metric_name: str | Sequence[str] = "value",
        experiment: str | None = None,
        *,
        nest_trials: bool = False,
        tag_user_attrs: bool = True,
        states: Iterable[TrialState] = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL),
    ) -> None:
        mlflow = _mlflow()
        if isinstance(metric_name, str):
            if not metric_name:
                raise ValueError("metric_name must not be empty")
        elif not metric_name or not all(isinstance(m, str) and m for m in metric_name):
            raise TypeError(f"metric_name must be a name or a list of names, got {metric_name!r}")
        self.tracking_uri = tracking_uri
        self.metric_name = metric_name if isinstance(metric_name, str) else tuple(metric_name)
        self.experiment = experiment
        self.nest_trials = bool(nest_trials)
        self.tag_user_attrs = bool(tag_user_attrs)
        self.states = frozenset(TrialState(s) for s in states)
        self.client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        self._experiments: dict[str, str] = {}
        self._parents: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        if trial.state not in self.states:
            return
        with self._lock:
            self._log(study, trial)

    # ---- experiment and parent run -------------------------------------------------------
    def experiment_id(self, study: Study) -> str:
        """The id of the experiment the study's runs go to (created when missing)."""
        name = self.experiment or study.name
        if name not in self._experiments:
            found = self.client.get_experiment_by_name(name)
            self._experiments[name] = (
                self.client.create_experiment(name) if found is None else found.experiment_id
            )
        return self._experiments[name]

    def parent_run_id(self, study: Study) -> str:
        """The run the study's trial runs are nested under (``nest_trials=True``)."""
        mlflow = _mlflow()
        active = mlflow.active_run()
        if active is not None:
            return active.info.run_id
        if study.name not in self._parents:
            exp_id = self.experiment_id(study)
            found = self.client.search_runs(
                [exp_id],
                filter_string=f"tags.`{_STUDY_TAG}` = '{study.name}' "
                f"and tags.`{_PARENT_TAG}` = 'true'",
                max_results=1,
            )
            if found:
                self._parents[study.name] = found[0].info.run_id
            else:
                run = self.client.create_run(
                    exp_id,
                    run_name=study.name,
                    tags={_STUDY_TAG: study.name, _PARENT_TAG: "true"},
                )
                self._parents[study.name] = run.info.run_id
        return self._parents[study.name]

    # ---- one trial -----------------------------------------------------------------------
    def _log(self, study: Study, trial: FrozenTrial) -> None:
        from mlflow.entities import Metric, Param
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_TAG_VAL_LENGTH

        exp_id = self.experiment_id(study)
        tags = {
            "study_name": study.name,
            "number": str(trial.number),
            "state": trial.state.name,
            "direction": study.directions[0]
            if len(study.directions) == 1
            else json.dumps(list(study.directions)),
            _STUDY_TAG: study.name,
        }
        if trial.worker:
            tags["airda.worker"] = trial.worker
        if trial.error:
            tags["error"] = trial.error
        if self.tag_user_attrs:
            tags.update({str(k): v for k, v in trial.user_attrs.items()})
        parent = self.parent_run_id(study) if self.nest_trials else None
        if parent is not None:
            tags[MLFLOW_PARENT_RUN_ID] = parent
        run = self.client.create_run(
            exp_id,
            start_time=_ms(trial.datetime_start),
            run_name=str(trial.number),
            tags={k: _text(v, MAX_TAG_VAL_LENGTH) for k, v in tags.items()},
        )
        run_id = run.info.run_id
        end = _ms(trial.datetime_complete) or _ms(trial.datetime_start) or 0
        params = [
            Param(str(k), _text(v, MAX_PARAM_VAL_LENGTH)) for k, v in sorted(trial.params.items())
        ]
        metrics = [
            Metric("intermediate_value", float(v), end, int(step))
            for step, v in sorted(trial.intermediate.items())
        ]
        if trial.values is not None:
            names = _metric_names(self.metric_name, len(trial.values))
            metrics += [
                Metric(n, float(v), end, 0) for n, v in zip(names, trial.values, strict=True)
            ]
        # One request per batch limit (MLflow takes at most 1000 metrics, 100 params a call).
        for i in range(0, len(params), 100):
            self.client.log_batch(run_id, params=params[i : i + 100])
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(run_id, metrics=metrics[i : i + 1000])
        status = "FAILED" if trial.state is TrialState.FAIL else "FINISHED"
        self.client.set_terminated(run_id, status=status, end_time=_ms(trial.datetime_complete))
        if parent is not None:
            if trial.values is not None and trial.state is TrialState.COMPLETE:
                self._log_best(study, parent, trial)
            if parent in self._parents.values():
                # A parent this callback made ends with its latest trial; a later trial (or a
                # resumed study) still nests under it and moves its end.
                self.client.set_terminated(parent, status="FINISHED")

    def _log_best(self, study: Study, parent: str, trial: FrozenTrial) -> None:
        if len(study.directions) != 1:
            return
        try:
            best = study.best_value
        except ValueError:  # no complete trial yet
            return
        name = _metric_names(self.metric_name, 1)[0]
        self.client.log_metric(parent, f"best_{name}", best, step=trial.number)
