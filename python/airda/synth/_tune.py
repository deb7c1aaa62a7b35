"""A study that picks the synthesizer and its hyperparameters: utility up, privacy kept.

Every trial fits one synthesizer (its name and hyperparameters are the trial's parameters) on
the search rows of the real table, samples as many rows, and is scored on two objectives, both
maximised: the utility of the synthetic rows (TSTR: a model trained on them, tested on the real
validation rows) and their privacy (the median distance of a synthetic row to its closest
training row, over the same median for the validation rows, which the synthesizer never saw:
1 means "as far from the training rows as fresh real rows are"). The winner is the best utility
among trials whose privacy ratio is at least the floor. Its stored sample is then read against
the locked test rows once (:class:`airda.eval.Splits` records the read on the study).

Fitted models and samples are written beside the study (one folder per trial) and their paths
stored on the trials, so a resumed study keeps them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airda.space import Categorical, Float, Int, Space

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from airda.synth._metadata import Metadata
    from airda.synth._metrics import Privacy, Utility

__all__ = ["TuneResult", "tune", "tune_space"]

# Trial parameter name -> (synthesizer, its hyperparameter).
_HYPER = {
    "copula_marginals": ("copula", "marginals"),
    "copula_shrinkage": ("copula", "shrinkage"),
    "copula_by_class": ("copula", "by"),
    "tvae_epochs": ("tvae", "epochs"),
    "tvae_latent_dim": ("tvae", "latent_dim"),
    "tvae_learning_rate": ("tvae", "learning_rate"),
    "tvae_batch_size": ("tvae", "batch_size"),
    "tvae_loss_factor": ("tvae", "loss_factor"),
}


def tune_space(synthesizers: tuple[str, ...] = ("copula", "tvae")) -> Space:
    """The default search space: which synthesizer, then its own hyperparameters."""
    unknown = [s for s in synthesizers if s not in ("copula", "tvae")]
    if unknown or not synthesizers:
        raise ValueError(
            f"synthesizers must be a non-empty subset of ('copula', 'tvae'), got {synthesizers}"
        )
    params: dict[str, Any] = {"synthesizer": Categorical(list(synthesizers))}
    if "copula" in synthesizers:
        on = {"synthesizer": "copula"}
        params["copula_marginals"] = Categorical(
            ["auto", "empirical", "kde", "parametric"], when=on
        )
        params["copula_shrinkage"] = Float(0.0, 0.3, when=on)
        params["copula_by_class"] = Categorical([True, False], when=on)
    if "tvae" in synthesizers:
        on = {"synthesizer": "tvae"}
        params["tvae_epochs"] = Int(30, 300, log=True, when=on)
        params["tvae_latent_dim"] = Categorical([32, 64, 128], when=on)
        params["tvae_learning_rate"] = Float(3e-4, 3e-3, log=True, when=on)
        params["tvae_batch_size"] = Categorical([128, 256, 500], when=on)
        params["tvae_loss_factor"] = Float(0.5, 4.0, log=True, when=on)
    return Space(params)


def _hyperparameters(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = params["synthesizer"]
    hp: dict[str, Any] = {}
    for key, value in params.items():
        owner = _HYPER.get(key)
        if owner is None or owner[0] != name:
            continue
        if key == "copula_by_class":
            value = "auto" if value else None
        hp[owner[1]] = value
    return name, hp


@dataclasses.dataclass
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes:
        study: the study (every trial: parameters, the two objectives, artefact paths).
        best_trial: the winner's trial number; synthesizer, hyperparameters: what it fitted.
        model_path, sample_path: the winner's saved synthesizer and sample.
        validation_utility, privacy_ratio: the winner's two objectives during the search.
        feasible: whether the winner met the privacy floor (False: no trial did, and the
            winner is the most private trial).
        test_utility: TSTR against TRTR on the locked test rows, with an interval.
        test_privacy: DCR of the winner's sample against the test rows as the holdout.
    """

    study: Any
    best_trial: int
    synthesizer: str
    hyperparameters: dict[str, Any]
    model_path: Path
    sample_path: Path
    validation_utility: float
    privacy_ratio: float
    feasible: bool
    test_utility: Utility
    test_privacy: Privacy

    def load_model(self) -> Any:
        """The winner's fitted synthesizer."""
        from airda.synth._base import Synthesizer

        return Synthesizer.load(self.model_path)

    def summary(self) -> str:
        import numpy as np

        u = self.test_utility
        p = self.test_privacy
        hp = ", ".join(f"{k}={v!r}" for k, v in sorted(self.hyperparameters.items()))
        lines = [
            f"best: trial {self.best_trial}, {self.synthesizer}({hp})",
            f"validation: {u.metric} {self.validation_utility:.4f}, privacy ratio "
            f"{self.privacy_ratio:.3f}" + ("" if self.feasible else " (below the floor)"),
            f"test: TSTR {u.tstr:.4f} vs TRTR {u.trtr:.4f}, difference {u.difference:+.4f} "
            f"({u.confidence:.0%} CI {u.low:+.4f} to {u.high:+.4f}), {u.n_test} test rows",
            f"test privacy: median DCR of synthetic rows {np.median(p.dcr_synthetic):.4g}, of "
            f"test rows {np.median(p.dcr_holdout):.4g} (ratio {_privacy_ratio(p):.3f}), "
            f"{p.share_closer:.1%} of synthetic rows closer than the test rows' 5th percentile",
            f"model: {self.model_path}",
            f"sample: {self.sample_path}",
        ]
        return "\n".join(lines)


def _artifact_root(storage: Any, name: str, artifacts: Any) -> Path:
    if artifacts is not None:
        return Path(artifacts)
    if isinstance(storage, str | os.PathLike) and not str(storage).startswith(
        ("postgresql:", "postgres:")
    ):
        path = Path(str(storage).removeprefix("sqlite:///"))
        return path.with_name(f"{path.stem}-artifacts") / name
    return Path("airda-synth-artifacts") / name


def tune(
    data: pd.DataFrame,
    target: str,
    *,
    metadata: Metadata | None = None,
    synthesizers: tuple[str, ...] = ("copula", "tvae"),
    space: Space | None = None,
    n_trials: int = 20,
    timeout: float | None = None,
    strategy: str = "tpe",
    storage: Any = None,
    name: str | None = None,
    artifacts: str | os.PathLike[str] | None = None,
    privacy_floor: float = 1.0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    max_fit_seconds: float | None = 120.0,
    trees: int = 100,
    seed: int = 0,
    show_progress: bool | None = None,
) -> TuneResult:
    """Search synthesizers and hyperparameters for utility under a privacy floor.

    The real table is split once (seeded, stratified on a class target) into search rows (the
    synthesizers fit them), validation rows (TSTR and the privacy baseline during the search)
    and test rows, locked until the search ends and read once for the winner. The study is
    durable: with a storage and a name, a second call continues it (same split, same
    artefacts; ``n_trials`` more trials).

    Args:
        data: the real table. target: the column the utility model predicts.
        metadata: the table's :class:`Metadata` (detected with `target` when None).
        synthesizers: the candidates of the default space.
        space: a custom space (its ``synthesizer`` parameter names a registered synthesizer;
            other parameters ``<synthesizer>_<hyperparameter>``); default :func:`tune_space`.
        n_trials, timeout: the budget of this call. strategy: the study's strategy.
        storage, name: where the study lives (None: in memory) and its name.
        artifacts: the folder of fitted models and samples (default: beside the storage
            file, or ``./airda-synth-artifacts/NAME``).
        privacy_floor: the least privacy ratio a winner may have.
        fractions: shares of (search, validation, test) rows.
        max_fit_seconds: a deep synthesizer's training stops after this long (None: epochs).
        trees: the random forest's trees in the utility model.
        seed: seed of the split, the strategy and every synthesizer.
        show_progress: a progress bar (default: when stderr is a terminal).

    Returns:
        A :class:`TuneResult`.

    Example:
        >>> import tempfile
        >>> import numpy as np, pandas as pd
        >>> from airda import synth
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=300)
        >>> df = pd.DataFrame({"x": x, "z": x + rng.normal(size=300) * 0.3,
        ...                    "label": np.where(x > 0, "pos", "neg")})
        >>> result = synth.tune(df, "label", synthesizers=("copula",), n_trials=3,
        ...                     artifacts=tempfile.mkdtemp(), trees=20)
        >>> result.synthesizer
        'copula'
    """
    import pandas as pd

    import airda
    from airda.eval import Splits, finish_search
    from airda.synth import make
    from airda.synth._base import Synthesizer
    from airda.synth._metadata import Metadata
    from airda.synth._metrics import ml_utility, privacy
    from airda.trial import TrialState

    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if target not in data.columns:
        raise ValueError(f"target column {target!r} is not in the table")
    if not (isinstance(privacy_floor, int | float) and math.isfinite(privacy_floor)):
        raise ValueError(f"privacy_floor must be a finite number, got {privacy_floor!r}")
    md = metadata if metadata is not None else Metadata.detect(data, target=target)
    space = space if space is not None else tune_space(tuple(synthesizers))
    kind = md.columns[target].kind
    stratify = data[target].astype(str).to_numpy() if kind in ("categorical", "boolean") else None
    sizes = [
        len(part) for part in Splits(len(data), fractions, seed=seed, stratify=stratify)._parts
    ]
    if min(sizes) < _MIN_ROWS:
        raise ValueError(
            f"the table has {len(data)} rows: too few for search/validation/test splits "
            f"{tuple(fractions)} of at least {_MIN_ROWS} rows each (sizes {sizes})"
        )
    study = airda.create_study(
        name,
        storage=storage,
        space=space,
        directions=["maximize", "maximize"],
        strategy=strategy,
        seed=seed,
        load_if_exists=name is not None,
        user_attrs={"synth_target": target},
    )
    root = _artifact_root(storage, study.name, artifacts)
    splits = Splits(len(data), fractions, seed=seed, stratify=stratify, study=study)
    search = data.iloc[splits.search].reset_index(drop=True)
    validation = data.iloc[splits.validation].reset_index(drop=True)

    def objective(trial: Any) -> tuple[float, float]:
        synth_name, hp = _hyperparameters(dict(trial.params))
        if synth_name == "tvae" and max_fit_seconds is not None:
            hp["max_seconds"] = float(max_fit_seconds)
        folder = root / f"trial-{trial.number}"
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        model = make(synth_name, seed=seed + trial.number, **hp).fit(search, md)
        fit_s = time.perf_counter() - t0
        sample = model.sample(len(search))
        model_path = model.save(folder / "model.airda")
        sample_path = folder / "sample.csv"
        sample.to_csv(sample_path, index=False)
        trial.set_user_attr("model_path", str(model_path))
        trial.set_user_attr("sample_path", str(sample_path))
        trial.set_user_attr("fit_seconds", round(fit_s, 4))
        util = ml_utility(
            search, sample, target, test=validation, metadata=md, trees=trees, seed=seed
        )
        priv = privacy(search, sample, holdout=validation, metadata=md, seed=seed)
        ratio = _privacy_ratio(priv)
        trial.set_user_attr("utility_metric", util.metric)
        trial.set_user_attr("trtr_validation", util.trtr)
        trial.set_user_attr("share_closer", priv.share_closer)
        return util.tstr, ratio

    study.optimize(objective, n_trials=n_trials, timeout=timeout, show_progress=show_progress)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and t.values is not None]
    if not done:
        states = sorted({t.state.name for t in study.trials})
        raise RuntimeError(
            f"no trial of study {study.name!r} finished (trial states: {states}); see "
            f"`airda studies show {study.name}` for the failures"
        )
    feasible = [t for t in done if t.values[1] >= privacy_floor]
    best = (
        max(feasible, key=lambda t: (t.values[0], t.values[1]))
        if feasible
        else max(done, key=lambda t: (t.values[1], t.values[0]))
    )
    finish_search(study, note=f"synth tune: winner trial {best.number}")
    test = data.iloc[splits.test].reset_index(drop=True)
    # A fresh, seeded draw of the stored winner (the CSV is for people: it loses dtypes).
    winner_sample = Synthesizer.load(best.user_attrs["model_path"]).sample(len(search), seed=seed)
    test_util = ml_utility(
        search, winner_sample, target, test=test, metadata=md, trees=trees, seed=seed
    )
    test_priv = privacy(search, winner_sample, holdout=test, metadata=md, seed=seed)
    synth_name, hp = _hyperparameters(dict(best.params))
    study.set_user_attr(
        "synth_tune_result",
        {
            "best_trial": best.number,
            "test_tstr": test_util.tstr,
            "test_trtr": test_util.trtr,
            "test_low": test_util.low,
            "test_high": test_util.high,
            "metric": test_util.metric,
            "test_privacy_ratio": _privacy_ratio(test_priv),
        },
    )
    return TuneResult(
        study=study,
        best_trial=best.number,
        synthesizer=synth_name,
        hyperparameters=hp,
        model_path=Path(best.user_attrs["model_path"]),
        sample_path=Path(best.user_attrs["sample_path"]),
        validation_utility=float(best.values[0]),
        privacy_ratio=float(best.values[1]),
        feasible=bool(feasible),
        test_utility=test_util,
        test_privacy=test_priv,
    )


_MIN_ROWS = 5  # per split: fewer cannot train, validate or test anything
_RATIO_CAP = 1e6  # objectives must be finite


def _privacy_ratio(priv: Privacy) -> float:
    import numpy as np

    held = priv.dcr_holdout
    if held is None or held.size == 0:
        raise ValueError("the privacy ratio needs holdout rows")
    base = float(np.median(held))
    ours = float(np.median(priv.dcr_synthetic))
    if base <= 0.0:  # the holdout repeats training rows: any distance is as private
        return 1.0 if ours <= 0.0 else _RATIO_CAP
    return min(ours / base, _RATIO_CAP)
