"""``@airda.codeopt.autotune``: Triton kernel configs searched by any core strategy, with a
persistent cache per (kernel source hash, key values, device).

In the spirit of ``@triton.autotune``, but the configs (block sizes, ``num_warps``,
``num_stages``) form an airda space searched by a strategy within a budget instead of being
tried exhaustively, and the best config is kept on disk so that a new process does not tune
again. On a GPU a config is timed with CUDA events after an L2 flush (short kernels by
CUDA-graph replay); under ``TRITON_INTERPRET=1`` (no GPU) by wall clock.

Example (the Triton kernel must live in a file; see docs/tune.md)::

    @autotune(space={"BLOCK": [64, 128, 256], "num_warps": [2, 4, 8]}, key=["n"], budget=6)
    @triton.jit
    def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr): ...

    add_kernel[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](x, y, out, n)
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airda.codeopt.cvariants import cache_dir
from airda.codeopt.profiler import summarize
from airda.codeopt.search import search_variants, variant_errors

__all__ = ["Autotuner", "autotune", "do_bench_gpu"]

_LAUNCH_OPTIONS = ("num_warps", "num_stages", "num_ctas", "maxnreg")


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def do_bench_gpu(
    fn: Callable[[], Any],
    *,
    rep_ms: float = 100.0,
    warmup_ms: float = 25.0,
    flush_bytes: int = 256 << 20,
    graph_below_us: float = 20.0,
    max_samples: int = 1000,
) -> list[float]:
    """Per-call seconds of ``fn()`` on the current CUDA device.

    Every sample is timed with CUDA events after writing over a buffer larger than the L2
    cache (not timed). A kernel shorter than `graph_below_us` is captured `n` times in a CUDA
    graph and replayed, so launch overhead does not dominate; a sample is then the replay
    time divided by `n`.
    """
    import torch

    flush = torch.empty(flush_bytes // 4, dtype=torch.int32, device="cuda")
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        fn()
    end.record()
    end.synchronize()
    est_ms = max(start.elapsed_time(end) / 5, 1e-4)
    run: Callable[[], Any] = fn
    per = 1
    if est_ms * 1e3 < graph_below_us:
        per = max(1, min(1000, int(graph_below_us * 10 / (est_ms * 1e3))))
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()  # warm-up on the side stream before capture
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(per):
                fn()
        run = graph.replay
        est_ms *= per
    n_warm = max(1, int(warmup_ms / est_ms))
    n_rep = max(5, min(max_samples, int(rep_ms / est_ms)))
    for _ in range(n_warm):
        run()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n_rep)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n_rep)]
    for i in range(n_rep):
        flush.zero_()
        starts[i].record()
        run()
        ends[i].record()
    torch.cuda.synchronize()
    return [s.elapsed_time(e) * 1e-3 / per for s, e in zip(starts, ends, strict=True)]


def _bench_wall(fn: Callable[[], Any], max_time_s: float, min_samples: int = 5) -> list[float]:
    fn()  # compile / warm up
    out: list[float] = []
    spent = 0.0
    while len(out) < min_samples or spent < max_time_s:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        out.append(dt)
        spent += dt
        if len(out) >= 10_000:
            break
    return out


class Autotuner:
    """The object ``@autotune`` returns: index with a grid and call, as a Triton kernel."""

    def __init__(
        self,
        kernel: Any,
        *,
        configs: Sequence[Mapping[str, Any]] | None,
        space: Mapping[str, Any] | None,
        key: Sequence[str],
        strategy: Any,
        budget: int | None,
        seed: int,
        persistent: bool,
        reset_to_zero: Sequence[str],
        max_time_s: float,
        storage: Any,
    ):
        from airda.space import Categorical, Param, Space

        if (configs is None) == (space is None):
            raise ValueError("give configs (a list of dicts) or space (name -> values), not both")
        self.kernel = kernel
        self.arg_names = list(getattr(kernel, "arg_names", None) or _arg_names(kernel))
        for k in list(key) + list(reset_to_zero):
            if k not in self.arg_names:
                raise ValueError(f"{k!r} is not an argument of the kernel {self.arg_names}")
        self.key = list(key)
        self.reset_to_zero = list(reset_to_zero)
        self.configs = [dict(c) for c in configs] if configs is not None else None
        if self.configs is not None:
            if not self.configs:
                raise ValueError("configs is empty")
            self.space = Space({"config": Categorical(list(range(len(self.configs))))})
        else:
            assert space is not None
            self.space = Space(
                {k: v if isinstance(v, Param) else Categorical(list(v)) for k, v in space.items()}
            )
        self.strategy = strategy
        self.budget = budget
        self.seed = seed
        self.persistent = persistent
        self.max_time_s = max_time_s
        self.storage = storage
        self.best: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.studies: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        src = getattr(kernel, "src", None) or _source(kernel)
        self.source_hash = hashlib.sha256(src.encode()).hexdigest()[:16]

    # ---- the cache ------------------------------------------------------------------------
    def _device(self) -> str:
        if _interpreting():
            return "triton-interpreter"
        try:
            import torch

            return torch.cuda.get_device_name()
        except Exception:  # pragma: no cover - no torch / no device
            return "unknown"

    def _cache_file(self) -> Path:
        folder = cache_dir() / "triton"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{getattr(self.kernel, '__name__', 'kernel')}-{self.source_hash}.json"

    def _cache_key(self, key: tuple[Any, ...]) -> str:
        space = json.dumps(self.space.to_dict(), sort_keys=True)
        configs = json.dumps(self.configs, sort_keys=True, default=str)
        digest = hashlib.sha256((space + configs).encode()).hexdigest()[:12]
        return json.dumps([list(map(str, key)), self._device(), digest])

    def _load_cached(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        if not self.persistent:
            return None
        f = self._cache_file()
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            return None
        hit = doc.get(self._cache_key(key))
        return dict(hit["config"]) if hit else None

    def _store(self, key: tuple[Any, ...], config: dict[str, Any], median: float) -> None:
        if not self.persistent:
            return
        f = self._cache_file()
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            doc = {}
        doc[self._cache_key(key)] = {"config": config, "median_s": median}
        tmp = f.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, f)

    # ---- launching ------------------------------------------------------------------------
    def _config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.configs is not None:
            return dict(self.configs[int(params["config"])])
        return dict(params)

    def _launch(self, grid: Any, args: tuple[Any, ...], kwargs: dict[str, Any], cfg: dict) -> Any:
        meta = {k: v for k, v in cfg.items() if k not in _LAUNCH_OPTIONS}
        opts = {k: v for k, v in cfg.items() if k in _LAUNCH_OPTIONS}
        if _interpreting():
            opts = {}  # the interpreter has no warps or stages
        g = grid(dict(kwargs) | meta) if callable(grid) else grid
        return self.kernel[g](*args, **kwargs, **meta, **opts)

    def _reset(self, bound: Mapping[str, Any]) -> None:
        for name in self.reset_to_zero:
            bound[name].zero_()

    def _tune(self, grid: Any, args: tuple[Any, ...], kwargs: dict[str, Any], key: tuple) -> dict:
        from airda.study import create_study

        bound = dict(zip(self.arg_names, args, strict=False)) | kwargs
        name = (
            f"triton-{getattr(self.kernel, '__name__', 'kernel')}-{self.source_hash}-"
            + (hashlib.sha256(self._cache_key(key).encode()).hexdigest()[:8])
        )
        study = create_study(
            name,
            storage=self.storage,
            space=self.space,
            strategy=self.strategy,
            seed=self.seed,
            load_if_exists=True,
        )
        self.studies[key] = study

        def evaluate(trial: Any, _: Any) -> float:
            cfg = self._config(trial.params)

            def run() -> None:
                self._reset(bound)
                self._launch(grid, args, kwargs, cfg)

            with variant_errors():  # e.g. out of shared memory: this config fails, go on
                samples = (
                    _bench_wall(run, self.max_time_s) if _interpreting() else do_bench_gpu(run)
                )
            p = summarize(samples)
            for k, v in p.to_attrs().items():
                trial.set_user_attr(k, v)
            return p.median

        search_variants(study, evaluate, budget=self.budget)
        best = study.best_trial  # ValueError when every config failed
        cfg = self._config(best.params)
        self._store(key, cfg, float(best.user_attrs.get("median_s", best.values[0])))
        return cfg

    def __getitem__(self, grid: Any) -> Callable[..., Any]:
        def launcher(*args: Any, **kwargs: Any) -> Any:
            bound = dict(zip(self.arg_names, args, strict=False)) | kwargs
            key = tuple(_key_value(bound[k]) for k in self.key)
            with self._lock:
                cfg = self.best.get(key)
                if cfg is None:
                    cfg = self._load_cached(key)
                    if cfg is None:
                        cfg = self._tune(grid, args, kwargs, key)
                    self.best[key] = cfg
            self._reset(bound)
            return self._launch(grid, args, kwargs, cfg)

        return launcher


def _key_value(v: Any) -> Any:
    # Tensors key by dtype (as triton.autotune does); numbers by value.
    dtype = getattr(v, "dtype", None)
    if dtype is not None and hasattr(v, "shape"):
        return str(dtype)
    return v


def _arg_names(kernel: Any) -> list[str]:
    fn = getattr(kernel, "fn", kernel)
    return list(inspect.signature(fn).parameters)


def _source(kernel: Any) -> str:
    fn = getattr(kernel, "fn", kernel)
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return repr(fn)


def autotune(
    configs: Sequence[Mapping[str, Any]] | None = None,
    *,
    space: Mapping[str, Any] | None = None,
    key: Sequence[str] = (),
    strategy: Any = "random",
    budget: int | None = None,
    seed: int = 0,
    persistent: bool = True,
    reset_to_zero: Sequence[str] = (),
    max_time_s: float = 0.05,
    storage: Any = None,
) -> Callable[[Any], Autotuner]:
    """Decorate a ``@triton.jit`` kernel so its launch config is tuned on first use per key.

    Args:
        configs: a list of config dicts (constexpr values plus ``num_warps``/``num_stages``),
            searched as one categorical choice; or
        space: name -> list of values (or an airda Param), searched jointly.
        key: argument names whose values (dtypes for tensors) select a tuning; a new value
            tunes again.
        strategy / budget / seed: the core strategy and how many configs it may time.
        persistent: keep the best config per (source hash, key, device) in
            ``cache_dir()/triton`` so a new process does not tune again.
        reset_to_zero: tensor arguments zeroed before every timed run (accumulating outputs).
        max_time_s: wall-clock measuring time per config under the interpreter.
        storage: where the tuning studies are stored (None: in memory).
    """

    def wrap(kernel: Any) -> Autotuner:
        return Autotuner(
            kernel,
            configs=configs,
            space=space,
            key=key,
            strategy=strategy,
            budget=budget,
            seed=seed,
            persistent=persistent,
            reset_to_zero=reset_to_zero,
            max_time_s=max_time_s,
            storage=storage,
        )

    return wrap
