"""Evaluation protocols: search / validation / test splits with a locked test split, k-fold,
repeated k-fold, and seed plans that name every source of randomness.

A search that looks at its test split while it is still searching has tuned on it. So the test
split of a :class:`Splits` bound to a study stays locked until :func:`finish_search` is called
on the study, and every read after that is recorded on the study (who, when, what, how many
trials existed), where :func:`test_reads` and ``airda eval report`` show them. Splits and seeds
derive from explicit integers through a stable hash, so a run can be repeated anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

__all__ = [
    "KFold",
    "LockedSplitError",
    "RepeatedKFold",
    "SeedPlan",
    "Splits",
    "derive_seed",
    "finish_search",
    "search_finished",
    "test_reads",
]

FINISHED_ATTR = "airda.eval.search_finished"
READS_ATTR = "airda.eval.test_reads"
SPLITS_ATTR = "airda.eval.splits"


class LockedSplitError(RuntimeError):
    """The test split was read before the search was declared finished."""


def derive_seed(base: int, *keys: Any) -> int:
    """A 63-bit seed derived from an integer and any JSON-able keys, the same on every machine.

    Example:
        >>> from airda.eval._protocol import derive_seed
        >>> derive_seed(0, "init", 3) == derive_seed(0, "init", 3) != derive_seed(0, "init", 4)
        True
    """
    blob = json.dumps([int(base), *keys], sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "little") >> 1


# ---- study records ----------------------------------------------------------------------


def finish_search(study: Any, *, note: str = "") -> dict[str, Any]:
    """Declare a study's search finished: its locked test split may be read from now on.

    Idempotent: the first declaration (time and number of trials) is kept and returned.

    Example:
        >>> import airda
        >>> from airda.eval import finish_search
        >>> study = airda.create_study(space={"x": airda.space.Float(0, 1)}, seed=0)
        >>> finish_search(study)["n_trials"]
        0
    """
    done = study.user_attrs.get(FINISHED_ATTR)
    if done:
        return dict(done)
    record = {"time": time.time(), "n_trials": len(study.trials), "note": note}
    study.set_user_attr(FINISHED_ATTR, record)
    return record


def search_finished(study: Any) -> bool:
    """Whether :func:`finish_search` was called on the study."""
    return bool(study.user_attrs.get(FINISHED_ATTR))


def test_reads(study: Any) -> list[dict[str, Any]]:
    """Every recorded read of the study's test split, oldest first."""
    return list(study.user_attrs.get(READS_ATTR, []))


test_reads.__test__ = False  # type: ignore[attr-defined]  # a function of ours, not a pytest test


def record_test_read(study: Any, what: str, n: int) -> None:
    """Append a read of the test split to the study's record (refused while it is locked)."""
    if not search_finished(study):
        raise LockedSplitError(
            f"the test split of study {getattr(study, 'name', '?')!r} is locked until its "
            "search is declared finished: call airda.eval.finish_search(study) first"
        )
    reads = test_reads(study)
    reads.append(
        {
            "time": time.time(),
            "what": what,
            "n": int(n),
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "n_trials": len(study.trials),
        }
    )
    study.set_user_attr(READS_ATTR, reads)


# ---- splits -----------------------------------------------------------------------------


def _labels(stratify: Any, n: int) -> np.ndarray | None:
    if stratify is None:
        return None
    labels = np.asarray(stratify)
    if labels.shape != (n,):
        raise ValueError(f"stratify needs one label per item ({n}), got shape {labels.shape}")
    return labels


def _cut(count: int, fractions: Sequence[float]) -> np.ndarray:
    """Split `count` items by fractions with largest remainders, so sizes sum to `count`."""
    raw = np.asarray(fractions, dtype=np.float64) * count
    sizes = np.floor(raw).astype(np.int64)
    short = count - int(sizes.sum())
    if short:
        sizes[np.argsort(-(raw - sizes), kind="stable")[:short]] += 1
    return sizes


class Splits:
    """Search / validation / test index splits of n items, the test split locked.

    Args:
        n: number of items (examples, tasks, prompts...).
        fractions: shares of (search, validation, test), summing to 1.
        seed: the shuffle's seed.
        stratify: optional label per item; every split then keeps the labels' proportions.
        study: bind to a study: the test split unlocks with :func:`finish_search` on it, reads
            are recorded there, and the split definition is stored so that a later session
            with different splits is refused.

    Example:
        >>> from airda.eval import Splits
        >>> s = Splits(100, (0.6, 0.2, 0.2), seed=0)
        >>> len(s.search), len(s.validation)
        (60, 20)
        >>> s.test
        Traceback (most recent call last):
        ...
        airda.eval._protocol.LockedSplitError: the test split is locked until the search is declared finished: call splits.finish_search()
        >>> s.finish_search(); len(s.test), len(s.reads)
        (20, 1)
    """

    def __init__(
        self,
        n: int,
        fractions: Sequence[float] = (0.6, 0.2, 0.2),
        *,
        seed: int = 0,
        stratify: Any = None,
        study: Any = None,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        fr = [float(f) for f in fractions]
        if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-9:
            raise ValueError(
                f"fractions must be three non-negative shares (search, validation, test) summing "
                f"to 1, got {tuple(fractions)}"
            )
        self.n, self.fractions, self.seed = int(n), tuple(fr), int(seed)
        labels = _labels(stratify, self.n)
        rng = np.random.default_rng(derive_seed(self.seed, "splits"))
        parts: list[list[np.ndarray]] = [[], [], []]
        groups = (
            [np.arange(self.n)]
            if labels is None
            else [np.flatnonzero(labels == v) for v in np.unique(labels)]
        )
        for group in groups:
            shuffled = rng.permutation(group)
            bounds = np.cumsum(_cut(shuffled.size, fr))
            for i, piece in enumerate(np.split(shuffled, bounds[:-1])):
                parts[i].append(piece)
        self._parts = [np.sort(np.concatenate(p)) for p in parts]
        self._study = study
        self._finished = False
        self._reads: list[dict[str, Any]] = []
        if study is not None:
            self._bind(study)

    def _definition(self) -> dict[str, Any]:
        digest = hashlib.blake2b(digest_size=8)
        for part in self._parts:
            digest.update(part.astype(np.int64).tobytes() + b"|")
        return {
            "n": self.n,
            "fractions": list(self.fractions),
            "seed": self.seed,
            "fingerprint": digest.hexdigest(),
        }

    def _bind(self, study: Any) -> None:
        mine = self._definition()
        stored = study.user_attrs.get(SPLITS_ATTR)
        if stored is None:
            study.set_user_attr(SPLITS_ATTR, mine)
        elif stored != mine:
            raise ValueError(
                f"study {study.name!r} was searched with other splits ({stored}); these "
                f"are {mine}: a study's splits must not change"
            )

    @property
    def search(self) -> np.ndarray:
        """Indices the search may use freely (training, tuning)."""
        return self._parts[0].copy()

    @property
    def validation(self) -> np.ndarray:
        """Indices for the search's own model selection."""
        return self._parts[1].copy()

    @property
    def test(self) -> np.ndarray:
        """The held-out indices: locked until the search is finished; every read is recorded."""
        idx = self._parts[2]
        if self._study is not None:
            record_test_read(self._study, "Splits.test", idx.size)
        else:
            if not self._finished:
                raise LockedSplitError(
                    "the test split is locked until the search is declared finished: call "
                    "splits.finish_search()"
                )
            self._reads.append({"time": time.time(), "what": "Splits.test", "n": int(idx.size)})
        return idx.copy()

    def finish_search(self) -> None:
        """Unlock the test split (on the bound study, through :func:`finish_search`)."""
        if self._study is not None:
            finish_search(self._study)
        self._finished = True

    @property
    def reads(self) -> list[dict[str, Any]]:
        """The recorded reads of the test split."""
        return test_reads(self._study) if self._study is not None else list(self._reads)

    def __repr__(self) -> str:
        sizes = ", ".join(str(p.size) for p in self._parts)
        return f"Splits(n={self.n}, sizes=({sizes}), seed={self.seed})"


class KFold:
    """k-fold cross-validation indices (shuffled, optionally stratified).

    Example:
        >>> from airda.eval import KFold
        >>> folds = list(KFold(4, seed=0).split(10))
        >>> [len(v) for _, v in folds], sorted(int(i) for _, v in folds for i in v) == list(range(10))
        ([3, 3, 2, 2], True)
    """

    def __init__(self, n_splits: int = 5, *, shuffle: bool = True, seed: int = 0) -> None:
        if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2:
            raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}")
        self.n_splits, self.shuffle, self.seed = n_splits, shuffle, int(seed)

    def split(self, n: int, stratify: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (train, validation) index arrays for each fold."""
        if n < self.n_splits:
            raise ValueError(f"cannot make {self.n_splits} folds of {n} items")
        labels = _labels(stratify, n)
        rng = np.random.default_rng(derive_seed(self.seed, "kfold"))
        fold_of = np.empty(n, dtype=np.int64)
        groups = (
            [np.arange(n)]
            if labels is None
            else [np.flatnonzero(labels == v) for v in np.unique(labels)]
        )
        offset = 0
        for group in groups:
            order = rng.permutation(group) if self.shuffle else group
            # Deal the group round-robin, continuing where the last group stopped, so folds
            # stay balanced in size and in every label's proportion.
            fold_of[order] = (offset + np.arange(order.size)) % self.n_splits
            offset += order.size
        everything = np.arange(n)
        for k in range(self.n_splits):
            mask = fold_of == k
            yield everything[~mask], everything[mask]

    def __len__(self) -> int:
        return self.n_splits


class RepeatedKFold:
    """k-fold repeated with a different, derived shuffle each time.

    Example:
        >>> from airda.eval import RepeatedKFold
        >>> len(list(RepeatedKFold(3, n_repeats=2, seed=1).split(9)))
        6
    """

    def __init__(self, n_splits: int = 5, n_repeats: int = 10, *, seed: int = 0) -> None:
        if isinstance(n_repeats, bool) or not isinstance(n_repeats, int) or n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer, got {n_repeats!r}")
        KFold(n_splits)  # validates n_splits
        self.n_splits, self.n_repeats, self.seed = n_splits, n_repeats, int(seed)

    def split(self, n: int, stratify: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (train, validation) for every fold of every repeat, repeat by repeat."""
        for r in range(self.n_repeats):
            yield from KFold(self.n_splits, seed=derive_seed(self.seed, "repeat", r)).split(
                n, stratify
            )

    def __len__(self) -> int:
        return self.n_splits * self.n_repeats


class SeedPlan:
    """The seeds of repeated runs, one per named source of randomness.

    Bouthillier et al. (MLSys 2021) show that data order, initialisation and the rest each add
    their own variance to a benchmark; a plan names them, so that a run says which seed drove
    what, and ``vary`` lets you vary one source while holding the others at run 0's values.

    Example:
        >>> from airda.eval import SeedPlan
        >>> plan = SeedPlan(3, sources=("data_order", "init"), vary=("init",))
        >>> len({run["data_order"] for run in plan}), len({run["init"] for run in plan})
        (1, 3)
    """

    def __init__(
        self,
        n_runs: int,
        *,
        base_seed: int = 0,
        sources: Sequence[str] = ("data_order", "init"),
        vary: Sequence[str] | None = None,
    ) -> None:
        if isinstance(n_runs, bool) or not isinstance(n_runs, int) or n_runs < 1:
            raise ValueError(f"n_runs must be a positive integer, got {n_runs!r}")
        sources = tuple(str(s) for s in sources)
        if not sources or len(set(sources)) != len(sources):
            raise ValueError(f"sources must be distinct names, got {sources}")
        varied = sources if vary is None else tuple(vary)
        unknown = set(varied) - set(sources)
        if unknown:
            raise ValueError(f"vary names unknown sources {sorted(unknown)}; sources: {sources}")
        self.n_runs, self.base_seed, self.sources, self.vary = (
            n_runs,
            int(base_seed),
            sources,
            varied,
        )
        self.runs = [
            {s: derive_seed(self.base_seed, s, r if s in varied else 0) for s in sources}
            for r in range(n_runs)
        ]

    def __iter__(self) -> Iterator[dict[str, int]]:
        return iter(dict(run) for run in self.runs)

    def __len__(self) -> int:
        return self.n_runs

    def __getitem__(self, i: int) -> dict[str, int]:
        return dict(self.runs[i])

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-able data (sources, varied sources, seeds per run)."""
        return {
            "base_seed": self.base_seed,
            "sources": list(self.sources),
            "vary": list(self.vary),
            "runs": [dict(r) for r in self.runs],
        }
