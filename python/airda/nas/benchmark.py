"""Tabular NAS benchmarks: a table of pre-computed results per architecture, used as an
objective so that search strategies can be compared in seconds instead of GPU-days.

:meth:`TabularBenchmark.from_csv` reads NAS-Bench-201-style tables (one row per
architecture: an arch-string column and numeric metric columns); :meth:`~TabularBenchmark.query`
looks a result up and counts it; :meth:`~TabularBenchmark.objective` wraps a metric as an
airda study objective over :func:`~airda.nas.nb201.nb201_space`. Training cost can be
simulated (accumulated, never slept) to report search cost in "GPU seconds".

Example:
    >>> import airda
    >>> from airda.nas import TabularBenchmark, nb201_space
    >>> from airda.nas.nb201 import Arch
    >>> table = {"acc": [float(sum(Arch.from_index(i).op_ids)) for i in range(15625)]}
    >>> bench = TabularBenchmark([Arch.from_index(i) for i in range(15625)], table)
    >>> study = airda.create_study(space=nb201_space(), direction="maximize", seed=0)
    >>> study.optimize(bench.objective("acc"), n_trials=20)
    >>> bench.n_queries
    20
    >>> bench.best("acc")[1], study.best_value <= 24.0
    (24.0, True)
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from airda.nas.nb201 import Arch, ArchLike, as_arch

__all__ = ["TableObjective", "TabularBenchmark"]


class TabularBenchmark:
    """Results per architecture, queried by arch and counted.

    Args:
        archs: the table's architectures, one per row, distinct.
        table: metric name -> one value per row.
        source: where the table came from, for messages.
        indices: the table's own index per row (e.g. the benchmark's ``index`` column), for
            :meth:`arch_at` / :meth:`index_of`; default the row numbers.
        cost_column: a metric holding each architecture's training time (seconds); every
            query adds it to :attr:`simulated_time`.
        cost_per_query: seconds added to :attr:`simulated_time` by every query (on top of
            `cost_column` if both are given).

    Counters (:attr:`n_queries`, :attr:`n_unique_queries`, :attr:`simulated_time`) live in
    this object: worker processes each count their own.
    """

    def __init__(
        self,
        archs: Sequence[Arch],
        table: Mapping[str, Sequence[float]],
        *,
        source: str = "<memory>",
        indices: Sequence[int] | None = None,
        cost_column: str | None = None,
        cost_per_query: float = 0.0,
    ):
        self.source = source
        self._archs = tuple(as_arch(a) for a in archs)
        self._row: dict[Arch, int] = {}
        for r, a in enumerate(self._archs):
            if a in self._row:
                raise ValueError(
                    f"{source}: architecture {a.to_string()} appears twice "
                    f"(rows {self._row[a] + 1} and {r + 1})"
                )
            self._row[a] = r
        self._values: dict[str, np.ndarray] = {}
        for name, col in table.items():
            values = np.asarray(col, dtype=np.float64)
            if values.shape != (len(self._archs),):
                raise ValueError(
                    f"{source}: metric {name!r} has {values.size} values for "
                    f"{len(self._archs)} architectures"
                )
            self._values[name] = values
        if not self._values:
            raise ValueError(f"{source}: the table has no metric")
        if indices is None:
            self._indices = tuple(range(len(self._archs)))
        else:
            self._indices = tuple(int(i) for i in indices)
            if len(self._indices) != len(self._archs):
                raise ValueError(
                    f"{source}: {len(self._indices)} indices for {len(self._archs)} architectures"
                )
        self._by_index: dict[int, int] = {}
        for r, i in enumerate(self._indices):
            if i in self._by_index:
                raise ValueError(
                    f"{source}: index {i} appears twice (rows {self._by_index[i] + 1} and {r + 1})"
                )
            self._by_index[i] = r
        if cost_column is not None and cost_column not in self._values:
            raise ValueError(
                f"{source}: cost column {cost_column!r} is not a metric; the metrics are "
                f"{list(self._values)}"
            )
        if not (isinstance(cost_per_query, (int, float)) and math.isfinite(cost_per_query)):
            raise ValueError(f"cost_per_query must be a finite number, got {cost_per_query!r}")
        if cost_per_query < 0:
            raise ValueError(f"cost_per_query must be >= 0, got {cost_per_query!r}")
        self.cost_column = cost_column
        self.cost_per_query = float(cost_per_query)
        self._lock = threading.Lock()
        self.reset_counters()

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        arch_column: str = "arch",
        metrics: Iterable[str] | None = None,
        *,
        index_column: str | None = "index",
        cost_column: str | None = None,
        cost_per_query: float = 0.0,
    ) -> TabularBenchmark:
        """Read a NAS-Bench-201-style CSV table (one row per architecture, with a header).

        Args:
            path: the CSV file.
            arch_column: the column of arch strings (``|op~0|+|op~0|op~1|+...``).
            metrics: the numeric columns to load; default every column but the arch and
                index columns.
            index_column: the table's own index column, used by :meth:`arch_at`; if this is
                the default ``"index"`` and the file has no such column, row numbers are used.
            cost_column: see the class docstring; loaded as a metric too.
            cost_per_query: see the class docstring.

        Raises:
            FileNotFoundError: no such file.
            ValueError: a missing column, an empty table, an arch string that does not parse,
                an architecture listed twice, or a metric value that is not a number; the
                message names the file, the column and the row (1 = first data row, i.e.
                line 2 of the file).

        Example:
            >>> import tempfile
            >>> from pathlib import Path
            >>> text = "index,arch,acc\\n7,|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|,12.5\\n"
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = Path(tmp) / "t.csv"
            ...     _ = path.write_text(text)
            ...     bench = TabularBenchmark.from_csv(path)
            >>> bench.metrics, bench.query(bench.arch_at(7), "acc")
            (('acc',), 12.5)
        """
        path = Path(path)
        where = str(path)
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{where}: the file is empty (no header row)")
            header = [h.strip() for h in header]
            seen: dict[str, int] = {}
            for k, h in enumerate(header):
                if h in seen:
                    raise ValueError(f"{where}: column {h!r} appears twice in the header")
                seen[h] = k
            if arch_column not in seen:
                raise ValueError(
                    f"{where}: missing column {arch_column!r} (the arch column); "
                    f"the columns are {header}"
                )
            use_index = index_column is not None and (
                index_column in seen or index_column != "index"
            )
            if use_index and index_column not in seen:
                raise ValueError(
                    f"{where}: missing column {index_column!r} (the index column); "
                    f"the columns are {header}"
                )
            skip = {arch_column, index_column if use_index else None}
            if metrics is None:
                names = [h for h in header if h not in skip]
            else:
                names = [metrics] if isinstance(metrics, str) else list(metrics)
                missing = [m for m in names if m not in seen]
                if missing:
                    raise ValueError(
                        f"{where}: missing metric column(s) {missing}; the columns are {header}"
                    )
            if cost_column is not None:
                if cost_column not in seen:
                    raise ValueError(
                        f"{where}: missing column {cost_column!r} (the cost column); "
                        f"the columns are {header}"
                    )
                if cost_column not in names:
                    names.append(cost_column)
            if not names:
                raise ValueError(
                    f"{where}: no metric column besides {sorted(s for s in skip if s)}"
                )

            archs: list[Arch] = []
            indices: list[int] = []
            columns: dict[str, list[float]] = {m: [] for m in names}
            first_row: dict[Arch, int] = {}
            for row_no, row in enumerate(reader, start=1):
                if not row or all(not cell.strip() for cell in row):
                    continue  # blank line
                if len(row) != len(header):
                    raise ValueError(
                        f"{where}: row {row_no} has {len(row)} fields, the header {len(header)}"
                    )
                text = row[seen[arch_column]]
                try:
                    arch = Arch.from_string(text)
                except ValueError as exc:
                    raise ValueError(
                        f"{where}: column {arch_column!r}, row {row_no}: {exc}"
                    ) from None
                if arch in first_row:
                    raise ValueError(
                        f"{where}: column {arch_column!r}: architecture {arch.to_string()} "
                        f"appears twice (rows {first_row[arch]} and {row_no})"
                    )
                first_row[arch] = row_no
                archs.append(arch)
                if use_index:
                    assert index_column is not None
                    cell = row[seen[index_column]].strip()
                    try:
                        indices.append(int(cell))
                    except ValueError:
                        raise ValueError(
                            f"{where}: column {index_column!r}, row {row_no}: {cell!r} is not "
                            "an integer index"
                        ) from None
                for m in names:
                    cell = row[seen[m]].strip()
                    try:
                        columns[m].append(float(cell))
                    except ValueError:
                        raise ValueError(
                            f"{where}: column {m!r}, row {row_no}: {cell!r} is not a number"
                        ) from None
            if not archs:
                raise ValueError(f"{where}: the table has no data row")
        return cls(
            archs,
            columns,
            source=where,
            indices=indices if use_index else None,
            cost_column=cost_column,
            cost_per_query=cost_per_query,
        )

    # ---- the table -------------------------------------------------------------------------
    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric names, in table order."""
        return tuple(self._values)

    @property
    def archs(self) -> tuple[Arch, ...]:
        """The architectures, in table order."""
        return self._archs

    def __len__(self) -> int:
        return len(self._archs)

    def __contains__(self, arch: object) -> bool:
        try:
            return as_arch(arch) in self._row  # type: ignore[arg-type]
        except ValueError:
            return False

    def __repr__(self) -> str:
        return f"TabularBenchmark({self.source!r}, {len(self)} archs, metrics={list(self.metrics)})"

    def _check_metric(self, metric: str) -> np.ndarray:
        try:
            return self._values[metric]
        except (KeyError, TypeError):
            raise KeyError(
                f"{self.source}: unknown metric {metric!r}; the metrics are {list(self._values)}"
            ) from None

    def _row_of(self, arch: ArchLike) -> tuple[Arch, int]:
        a = as_arch(arch)
        row = self._row.get(a)
        if row is None:
            raise KeyError(f"{self.source}: architecture {a.to_string()} is not in the table")
        return a, row

    def values(self, metric: str) -> np.ndarray:
        """A read-only view of a metric's values, in table order (not counted as queries)."""
        view = self._check_metric(metric).view()
        view.flags.writeable = False
        return view

    def lookup(self, arch: ArchLike, metric: str) -> float:
        """A metric's value for `arch` without counting a query (for reports and analysis)."""
        values = self._check_metric(metric)
        return float(values[self._row_of(arch)[1]])

    def arch_at(self, index: int) -> Arch:
        """The architecture at the table's own index (its index column, else its row number).

        Raises KeyError if the table has no such index.
        """
        try:
            return self._archs[self._by_index[int(index)]]
        except (KeyError, TypeError, ValueError):
            raise KeyError(f"{self.source}: no architecture with index {index!r}") from None

    def index_of(self, arch: ArchLike) -> int:
        """The table's own index of `arch` (inverse of :meth:`arch_at`)."""
        return self._indices[self._row_of(arch)[1]]

    # ---- queries ---------------------------------------------------------------------------
    def query(self, arch: ArchLike, metric: str) -> float:
        """The `metric` of `arch`, counted as one query (and its simulated cost).

        Args:
            arch: an arch string, an :class:`~airda.nas.nb201.Arch`, or
                :func:`~airda.nas.nb201.nb201_space` params.
            metric: one of :attr:`metrics`.

        Raises:
            ValueError: `arch` is not a valid architecture.
            KeyError: the architecture or the metric is not in the table.
        """
        values = self._check_metric(metric)
        a, row = self._row_of(arch)
        cost = self.cost_per_query
        if self.cost_column is not None:
            cost += float(self._values[self.cost_column][row])
        with self._lock:
            self._n_queries += 1
            self._queried.add(a)
            self._simulated_time += cost
        return float(values[row])

    @property
    def n_queries(self) -> int:
        """Queries answered so far, repeats included."""
        return self._n_queries

    @property
    def n_unique_queries(self) -> int:
        """Distinct architectures queried so far (any metric)."""
        return len(self._queried)

    @property
    def simulated_time(self) -> float:
        """Simulated training seconds of every query so far (see the class docstring)."""
        return self._simulated_time

    def reset_counters(self) -> None:
        """Zero the query counters and the simulated time."""
        with self._lock:
            self._n_queries = 0
            self._queried: set[Arch] = set()
            self._simulated_time = 0.0

    def objective(self, metric: str, *, space_params: bool = True) -> TableObjective:
        """A study objective returning `metric` of the trial's architecture, as a query.

        Args:
            metric: one of :attr:`metrics`.
            space_params: True: the trial's params are :func:`~airda.nas.nb201.nb201_space`
                params (``"0->1"``, ...). False: the params hold the arch string under
                ``"arch"`` (e.g. a space ``{"arch": Categorical([...strings...])}``).

        Returns:
            A :class:`TableObjective`: called with a trial (anything with ``.params``), a
            params dict, an arch string or an :class:`~airda.nas.nb201.Arch`, it returns the
            metric and counts the query here; given a live trial it also records the arch
            string as the trial's user attribute ``"arch"``. It pickles (with a copy of the
            table), so ``optimize(..., n_workers=k)`` can run it in worker processes, where
            each process counts its own queries.

        Use the study direction that suits the metric (``"maximize"`` for accuracies).
        """
        self._check_metric(metric)
        return TableObjective(self, metric, space_params=space_params)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]  # locks do not pickle; each copy gets its own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ---- reports ---------------------------------------------------------------------------
    def best(self, metric: str, *, direction: str = "maximize") -> tuple[Arch, float]:
        """The table's best architecture by `metric` and its value (not counted as a query).

        NaN values are ignored; ties go to the first row.
        """
        values = self._check_metric(metric)
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
        finite = ~np.isnan(values)
        if not finite.any():
            raise ValueError(f"{self.source}: metric {metric!r} has no value that is not NaN")
        signed = np.where(finite, values if direction == "maximize" else -values, -np.inf)
        row = int(np.argmax(signed))
        return self._archs[row], float(values[row])

    def percentile_of(self, value: float, metric: str) -> float:
        """The percentage (0..100) of the table's architectures whose `metric` is <= `value`.

        For a higher-is-better metric, 100 means "as good as the best in the table". NaN values
        in the table are left out.

        Example:
            >>> from airda.nas.nb201 import Arch
            >>> b = TabularBenchmark([Arch.from_index(i) for i in range(4)], {"acc": [1, 2, 3, 4]})
            >>> b.percentile_of(3, "acc"), b.percentile_of(0.5, "acc")
            (75.0, 0.0)
        """
        values = self._check_metric(metric)
        values = values[~np.isnan(values)]
        if values.size == 0:
            raise ValueError(f"{self.source}: metric {metric!r} has no value that is not NaN")
        return 100.0 * float(np.count_nonzero(values <= float(value))) / values.size


class TableObjective:
    """A metric of a :class:`TabularBenchmark` as a study objective; see
    :meth:`TabularBenchmark.objective`."""

    def __init__(self, benchmark: TabularBenchmark, metric: str, *, space_params: bool = True):
        self.benchmark = benchmark
        self.metric = metric
        self.space_params = space_params

    def __call__(self, trial: Any) -> float:
        params = getattr(trial, "params", trial)
        if isinstance(params, Mapping) and not self.space_params:
            if "arch" not in params:
                raise ValueError(
                    "space_params=False reads the arch string from params['arch'], "
                    f"but the params are {dict(params)}"
                )
            params = params["arch"]
        arch = as_arch(params)
        value = self.benchmark.query(arch, self.metric)
        if hasattr(trial, "set_user_attr"):
            trial.set_user_attr("arch", arch.to_string())
        return value

    def __repr__(self) -> str:
        return f"TableObjective({self.benchmark.source!r}, {self.metric!r})"
