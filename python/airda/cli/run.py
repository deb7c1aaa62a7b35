"""``airda run CONFIG.toml``: run a study described in a file."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_SECTIONS = {"study", "strategy", "objective", "budget", "space", "scheduler"}


def load_function(ref: str) -> Any:
    """``package.module:function`` -> the function."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(
            f"objective.function must look like 'package.module:function', got {ref!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for the objective: {exc}") from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(fn):
        raise ValueError(f"{ref} is not callable")
    return fn


def read_config(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"no config file {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(config) - _SECTIONS
    if unknown:
        raise ValueError(
            f"{path}: unknown section(s) {sorted(unknown)}; expected {sorted(_SECTIONS)}"
        )
    if "objective" not in config or "function" not in config["objective"]:
        raise ValueError(f"{path}: [objective] function = 'module:function' is required")
    return config


def make_scheduler(table: Any, path: Path) -> Any:
    """The ``[scheduler]`` table -> a scheduler: ``name`` (see
    :data:`airda.schedulers.SCHEDULERS`) and the scheduler's options as the other keys, e.g.
    ``name = "asha"``, ``max_resource = 27``."""
    from airda.schedulers import SCHEDULERS, get_scheduler

    if not isinstance(table, dict):
        raise ValueError(f"{path}: [scheduler] must be a table with name = '...' and options")
    options = dict(table)
    name = options.pop("name", None)
    if name is None:
        raise ValueError(f"{path}: [scheduler] needs name = one of {', '.join(sorted(SCHEDULERS))}")
    try:
        return get_scheduler(name, options)
    except ValueError as exc:
        raise ValueError(f"{path}: [scheduler]: {exc}") from None


def _label(obj: Any) -> str:
    """repr(obj) where its class defines one (e.g. ASHA's, with its options), else its name."""
    return repr(obj) if type(obj).__repr__ is not object.__repr__ else type(obj).__name__


def run_config(
    path: Path,
    *,
    storage: str | None,
    n_trials: int | None,
    workers: int | None,
    timeout: float | None,
    name: str | None,
) -> int:
    import airda
    from airda.space import Space

    config = read_config(path)
    study_cfg = dict(config.get("study", {}))
    budget = dict(config.get("budget", {}))
    strategy_cfg = config.get("strategy", {})
    objective = load_function(config["objective"]["function"])
    space = Space.from_dict(config["space"]) if config.get("space") else None
    scheduler = make_scheduler(config["scheduler"], path) if "scheduler" in config else None
    strategy = airda.strategies.get_strategy(
        study_cfg.get("strategy", "random"),
        seed=study_cfg.get("seed"),
        **dict(strategy_cfg.get("options", {})),
    )
    direction = study_cfg.get("direction")
    directions = study_cfg.get("directions")
    study = airda.create_study(
        name or study_cfg.get("name"),
        storage=storage or study_cfg.get("storage", "airda-studies.db"),
        space=space,
        strategy=strategy,
        direction=direction,
        directions=directions,
        scheduler=scheduler,
        load_if_exists=True,
    )
    trials = n_trials if n_trials is not None else budget.get("n_trials")
    limit = timeout if timeout is not None else budget.get("timeout")
    n_workers = workers if workers is not None else int(budget.get("workers", 1))
    before = len(study.trials)
    print(
        f"study {study.name!r} in {study.storage.url}: {before} trials so far; running "
        f"{trials if trials is not None else 'unlimited'} more with {strategy.name}"
        f"{f' and {_label(scheduler)}' if scheduler is not None else ''}"
        f"{f' on {n_workers} workers' if n_workers > 1 else ''}",
        flush=True,
    )
    study.optimize(objective, n_trials=trials, timeout=limit, n_workers=n_workers)
    from airda.cli.studies import print_best

    return print_best(study)
