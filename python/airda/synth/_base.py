"""The interface every synthesizer shares: fit a table, sample rows (conditioned or not), save
and load.

A subclass implements two methods on the encoder's arrays (:class:`~airda.synth._table.Encoded`):
``_fit(encoded)`` and ``_sample(n, cond_cat, cond_num, rng) -> Encoded``. The base class detects
and validates metadata, fits the :class:`~airda.synth._table.TableEncoder`, validates and encodes
conditions, decodes samples back to a DataFrame with the original columns, order and dtypes,
and stores everything in one file.

Example:
    >>> import pandas as pd
    >>> from airda.synth import make
    >>> df = pd.DataFrame({"x": [1.0, 2.5, 3.1, 4.7, 5.2, 6.8], "c": list("aabbab")})
    >>> synth = make("copula", seed=0).fit(df)
    >>> synth.sample(4).shape
    (4, 2)
"""

from __future__ import annotations

import importlib
import os
import pickle
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from airda.synth._metadata import Metadata, SynthDataError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from airda.synth._table import Encoded, TableEncoder

__all__ = ["Synthesizer"]

_MAGIC = b"AIRDA-SYNTH\x00"
_FORMAT = 1


class Synthesizer:
    """Base class of the synthesizers.

    Args:
        seed: the seed of fitting and, unless :meth:`sample` gets one, of sampling. Same seed,
            same data, same samples: a fitted (or loaded) synthesizer's n-th ``sample()`` call
            without a seed returns the same rows every time it is rebuilt.
        **hp: the subclass's hyperparameters (see its ``defaults``); an unknown name is an error.

    Attributes:
        metadata: the :class:`~airda.synth.Metadata` used for fitting (None before).
        fit_seconds: how long :meth:`fit` took.

    Subclasses set ``defaults`` (hyperparameter name -> default value), implement ``_fit`` and
    ``_sample``, and may set ``numeric_conditions = False`` when they cannot condition on a
    numerical column. Their fitted state is every instance attribute that is not the base's;
    override ``_get_state``/``_set_state`` to store something else (e.g. tensors on the CPU).
    """

    defaults: ClassVar[dict[str, Any]] = {}
    numeric_conditions: ClassVar[bool] = True

    _BASE_ATTRS: ClassVar[tuple[str, ...]] = (
        "seed",
        "_hp",
        "metadata",
        "fit_seconds",
        "_encoder",
        "_n_sampled",
    )

    def __init__(self, *, seed: int = 0, **hp: Any):
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"seed must be an int, got {seed!r}")
        unknown = set(hp) - set(self.defaults)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown hyperparameters {sorted(unknown)} "
                f"(known: {sorted(self.defaults)})"
            )
        self.seed = int(seed)
        self._hp = {**self.defaults, **hp}
        self._check_hyperparameters(self._hp)
        self.metadata: Metadata | None = None
        self.fit_seconds: float | None = None
        self._encoder: TableEncoder | None = None
        self._n_sampled = 0

    def _check_hyperparameters(self, hp: dict[str, Any]) -> None:
        """Raise ValueError/TypeError for a bad hyperparameter value (subclasses)."""

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters, defaults included, and the seed."""
        return {**self._hp, "seed": self.seed}

    @property
    def encoder(self) -> TableEncoder:
        """The fitted :class:`~airda.synth._table.TableEncoder`."""
        self._check_fitted()
        assert self._encoder is not None
        return self._encoder

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters.items())
        state = "fitted" if self._encoder is not None else "not fitted"
        return f"{type(self).__name__}({hp}) [{state}]"

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame, metadata: Metadata | None = None) -> Synthesizer:
        """Learn the table's distribution.

        Args:
            df: the table (a pandas DataFrame).
            metadata: its metadata; detected from `df` when None.

        Returns:
            self.

        Raises:
            SynthDataError: a table the metadata does not fit, or bad data (empty table,
                all-missing column, mixed types), naming the column.
        """
        from airda.synth._table import TableEncoder

        t0 = time.perf_counter()
        md = Metadata.detect(df) if metadata is None else metadata.copy()
        md.validate(df)
        self.metadata = md
        self._encoder = TableEncoder(md).fit(df, validate=False)
        self.metadata = self._encoder.metadata  # filled in (categories, ranges) by the encoder
        encoded = self._encoder.encode(df, validate=False)
        self._n_sampled = 0
        self._fit(encoded)
        self.fit_seconds = time.perf_counter() - t0
        return self

    def _fit(self, encoded: Encoded) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ sample
    def sample(
        self,
        n: int,
        *,
        conditions: dict[str, Any] | pd.DataFrame | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Draw `n` synthetic rows.

        Args:
            n: how many rows (a positive int).
            conditions: a dict column -> value that every row takes, or a DataFrame of `n` rows
                whose columns give each row's value. Conditioned columns come back exactly as
                given; the other columns follow their distribution given them.
            seed: the seed of this draw; None uses the synthesizer's seed and how many times it
                has sampled, so a rebuilt or loaded synthesizer repeats the same sequence.

        Returns:
            A DataFrame with the fitted table's columns, order and dtypes.

        Raises:
            SynthDataError: a wrong `n`, an unknown column in `conditions`, a value never seen
                in a categorical column, a condition this synthesizer cannot honour.
        """
        import pandas as pd

        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise SynthDataError(f"n must be a positive int, got {n!r}")
        n = int(n)
        if seed is None:
            rng = np.random.default_rng([self.seed, self._n_sampled, 0x5EED])
            self._n_sampled += 1
        else:
            if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
                raise TypeError(f"seed must be an int or None, got {seed!r}")
            rng = np.random.default_rng(int(seed))
        cond_df = self._condition_frame(n, conditions)
        enc = self.encoder
        cond_cat: dict[int, np.ndarray] = {}
        cond_num: dict[int, np.ndarray] = {}
        if cond_df is not None:
            cond_cat, cond_num = enc.encode_conditions(cond_df)
            if cond_num and not self.numeric_conditions:
                name = enc.num_names[next(iter(cond_num))]
                raise SynthDataError(
                    f"{type(self).__name__} cannot condition on the numerical column {name!r}",
                    name,
                )
        out = self._sample(n, cond_cat, cond_num, rng)
        df = enc.decode(out, rng=rng)
        if cond_df is not None:
            for c in cond_df.columns:  # exactly as given (rounding cannot move them)
                df[c] = pd.Series(cond_df[c].to_numpy(), index=df.index).astype(df[c].dtype)
        return df

    def _sample(
        self,
        n: int,
        cond_cat: dict[int, np.ndarray],
        cond_num: dict[int, np.ndarray],
        rng: np.random.Generator,
    ) -> Encoded:
        raise NotImplementedError

    def _condition_frame(self, n: int, conditions: Any) -> pd.DataFrame | None:
        import pandas as pd

        if conditions is None:
            return None
        assert self.metadata is not None
        if isinstance(conditions, dict):
            if not conditions:
                return None
            cond = pd.DataFrame({k: [v] * n for k, v in conditions.items()})
        elif isinstance(conditions, pd.DataFrame):
            if len(conditions) != n:
                raise SynthDataError(
                    f"conditions has {len(conditions)} rows; sample(n={n}) needs one per row"
                )
            cond = conditions.reset_index(drop=True)
        else:
            raise SynthDataError(
                f"conditions must be a dict or a DataFrame, got {type(conditions).__name__}"
            )
        for c in cond.columns:
            if c not in self.metadata.columns:
                raise SynthDataError(f"condition on unknown column {c!r}", str(c))
        return cond

    # ------------------------------------------------------------------ persistence
    def _check_fitted(self) -> None:
        if self._encoder is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(df) first")

    def _get_state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k not in self._BASE_ATTRS}

    def _set_state(self, state: dict[str, Any]) -> None:
        vars(self).update(state)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted synthesizer to one file (written atomically).

        The file holds the class, hyperparameters, metadata, encoder and fitted state as a
        pickle: load only files you trust, as with any pickle.
        """
        self._check_fitted()
        path = Path(path)
        cls = type(self)
        payload = {
            "format": _FORMAT,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "hyperparameters": dict(self._hp),
            "seed": self.seed,
            "metadata": self.metadata.to_dict() if self.metadata else None,
            "fit_seconds": self.fit_seconds,
            "n_sampled": self._n_sampled,
            "encoder": self._encoder,
            "state": self._get_state(),
        }
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(_MAGIC)
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Synthesizer:
        """Read a synthesizer that :meth:`save` wrote. Unpickles: trust the file as you would
        any pickle.

        Raises:
            ValueError: not a synthesizer file, or one of another class than `cls`.
        """
        path = Path(path)
        with open(path, "rb") as f:
            head = f.read(len(_MAGIC))
            if head != _MAGIC:
                raise ValueError(f"{path}: not an airda synthesizer file")
            payload = pickle.load(f)
        if payload.get("format") != _FORMAT:
            raise ValueError(f"{path}: unsupported synthesizer file format {payload.get('format')}")
        mod, _, qual = payload["class"].partition(":")
        klass: Any = importlib.import_module(mod)
        for part in qual.split("."):
            klass = getattr(klass, part)
        if not (isinstance(klass, type) and issubclass(klass, cls)):
            raise ValueError(f"{path}: holds a {payload['class']}, not a {cls.__name__}")
        obj = klass.__new__(klass)
        Synthesizer.__init__(obj, seed=payload["seed"])
        obj._hp = payload["hyperparameters"]
        obj.metadata = Metadata.from_dict(payload["metadata"]) if payload["metadata"] else None
        obj._encoder = payload["encoder"]
        obj.metadata = obj._encoder.metadata
        obj.fit_seconds = payload["fit_seconds"]
        obj._n_sampled = payload["n_sampled"]
        obj._set_state(payload["state"])
        return obj
