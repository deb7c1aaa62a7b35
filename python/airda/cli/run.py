"""``airda run CONFIG.toml``: run a study described in a file.

The file is checked before anything runs: an unknown table or key is an error that lists the
valid ones and suggests the nearest (a misspelt ``ntrials`` must not silently mean "no trial
limit"), and every value is checked for its type.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# What each table may hold, and the type of each value: "int", "number", "str", "table",
# "strs" (a list of strings). [space] and [scheduler] are checked by their own rules.
_SCHEMA: dict[str, dict[str, str]] = {
    "study": {
        "name": "str",
        "storage": "str",
        "direction": "str",
        "directions": "strs",
        "strategy": "str",
        "seed": "int",
    },
    "strategy": {"options": "table"},
    "objective": {"function": "str"},
    "budget": {"n_trials": "int", "timeout": "number", "workers": "int"},
}
_SECTIONS = (*_SCHEMA, "space", "scheduler")
_TYPE_NAMES = {
    "int": "an integer",
    "number": "a number",
    "str": "a string",
    "table": "a table",
    "strs": "a list of strings",
}
_DIRECTIONS = ("minimize", "maximize")
# The keys of a [space] parameter, by its type.
_PARAM_KEYS = {
    "float": ({"low", "high"}, {"log", "step", "when"}),
    "int": ({"low", "high"}, {"log", "step", "when"}),
    "categorical": ({"choices"}, {"when"}),
    "fixed": ({"value"}, {"when"}),
    "space": ({"params"}, {"when"}),
}
# A space this small is enumerated to know when every candidate has been tried.
_ENUMERABLE = 200_000


def did_you_mean(word: str, choices: Any) -> str:
    """`` (did you mean 'n_trials'?)`` for a near miss, else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind(value: Any) -> str:
    """The TOML name of a value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _type_ok(value: Any, expected: str) -> bool:
    if expected == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "str":
        return isinstance(value, str)
    if expected == "table":
        return isinstance(value, dict)
    if expected == "strs":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    raise AssertionError(expected)


def _unknown(path: Path, where: str, key: str, valid: Any, hint: str = "") -> ValueError:
    return ValueError(
        f"{path}: unknown key {key!r} in {where}{did_you_mean(key, valid)}; valid keys: "
        f"{', '.join(valid)}{hint}"
    )


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
    """Read and check a study's TOML file; ValueError names the file, table and key at fault."""
    try:
        with open(path, "rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"no config file {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    for key, value in config.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"{path}: [{key}] must be a table, got {key} = {value!r}")
            continue
        owner = next((s for s, keys in _SCHEMA.items() if key in keys), None)
        near = difflib.get_close_matches(key, _SECTIONS, n=1, cutoff=0.6)
        if owner is not None:
            hint = f" (it belongs in [{owner}])"
        elif near:
            hint = f" (did you mean [{near[0]}]?)"
        else:
            hint = did_you_mean(key, [k for keys in _SCHEMA.values() for k in keys])
        what = "section" if isinstance(value, dict) else "key"
        raise ValueError(
            f"{path}: unknown {what} {key!r} at the top of the file{hint}; sections: "
            f"{', '.join(f'[{s}]' for s in _SECTIONS)}"
        )
    for section, schema in _SCHEMA.items():
        table = config.get(section, {})
        for key, value in table.items():
            if key not in schema:
                hint = ""
                if section == "strategy" and key == "name":
                    hint = "; the strategy's name goes in [study] strategy"
                elif section == "strategy":
                    hint = "; the strategy's options go in [strategy.options]"
                raise _unknown(path, f"[{section}]", key, list(schema), hint)
            if not _type_ok(value, schema[key]):
                raise ValueError(
                    f"{path}: [{section}] {key} must be {_TYPE_NAMES[schema[key]]}, got "
                    f"{value!r} ({_kind(value)})"
                )
    _check_values(path, config)
    if "function" not in config.get("objective", {}):
        raise ValueError(f"{path}: [objective] function = 'module:function' is required")
    if config.get("space"):
        _check_space(path, config["space"], "[space]")
    return config


def _check_values(path: Path, config: dict[str, Any]) -> None:
    study = config.get("study", {})
    for d in [study["direction"]] if "direction" in study else study.get("directions", []):
        if d not in _DIRECTIONS:
            raise ValueError(
                f"{path}: [study] direction must be 'minimize' or 'maximize', got {d!r}"
                f"{did_you_mean(d, _DIRECTIONS)}"
            )
    if "direction" in study and "directions" in study:
        raise ValueError(f"{path}: [study] give direction or directions, not both")
    if study.get("seed", 0) < 0:
        raise ValueError(f"{path}: [study] seed must be >= 0, got {study['seed']}")
    budget = config.get("budget", {})
    if budget.get("n_trials", 0) < 0:
        raise ValueError(f"{path}: [budget] n_trials must be >= 0, got {budget['n_trials']}")
    if "timeout" in budget and not (budget["timeout"] > 0 and math.isfinite(budget["timeout"])):
        raise ValueError(f"{path}: [budget] timeout must be > 0 seconds, got {budget['timeout']}")
    if budget.get("workers", 1) < 1:
        raise ValueError(f"{path}: [budget] workers must be >= 1, got {budget['workers']}")


def _check_space(path: Path, table: Mapping[str, Any], where: str) -> None:
    """The keys of every parameter table; the values are checked by :class:`Space`."""
    for name, spec in table.items():
        if not isinstance(spec, dict):
            continue  # a list (categorical) or a plain value (fixed)
        if "type" not in spec:
            _check_space(path, spec, f"{where} {name}")  # a nested space
            continue
        kind = spec["type"]
        if kind not in _PARAM_KEYS:
            raise ValueError(
                f"{path}: {where} {name}: unknown type {kind!r}{did_you_mean(kind, _PARAM_KEYS)}; "
                f"types: {', '.join(_PARAM_KEYS)}"
            )
        required, optional = _PARAM_KEYS[kind]
        valid = ["type", *sorted(required), *sorted(optional)]
        for key in spec:
            if key not in valid:
                raise _unknown(path, f"{where} {name} ({kind})", key, valid)
        missing = sorted(required - set(spec))
        if missing:
            raise ValueError(f"{path}: {where} {name} ({kind}) needs {', '.join(missing)}")
        if kind == "space":
            if not isinstance(spec["params"], dict):
                raise ValueError(f"{path}: {where} {name}: params must be a table")
            _check_space(path, spec["params"], f"{where} {name}")


def make_space(table: Any, path: Path) -> Any:
    from airda.space import Space

    try:
        return Space.from_dict(table)
    except (ValueError, TypeError, KeyError) as exc:  # SpaceError is a ValueError
        raise ValueError(f"{path}: [space]: {exc}") from None


def make_strategy(study_cfg: dict[str, Any], options: dict[str, Any], path: Path) -> Any:
    from airda.strategies import _ALIASES as aliases
    from airda.strategies import STRATEGIES, get_strategy

    name = study_cfg.get("strategy", "random")
    key = aliases.get(name.lower(), name.lower())
    if key not in STRATEGIES:
        raise ValueError(
            f"{path}: [study] strategy {name!r} is unknown{did_you_mean(name, STRATEGIES)}; "
            f"strategies: {', '.join(sorted(STRATEGIES))}"
        )
    params = inspect.signature(STRATEGIES[key]).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        valid = [n for n in params if n != "seed"]
        for option in options:
            if option not in valid and not valid:
                raise ValueError(
                    f"{path}: unknown key {option!r} in [strategy.options]: strategy {key!r} "
                    "takes no options"
                )
            if option not in valid:
                raise _unknown(path, f"[strategy.options] of {key!r}", option, valid)
    try:
        return get_strategy(name, seed=study_cfg.get("seed"), **options)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: [strategy.options]: {exc}") from None


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
        raise ValueError(f"{path}: [scheduler]: {exc}{did_you_mean(name, SCHEDULERS)}") from None


def _label(obj: Any) -> str:
    """repr(obj) where its class defines one (e.g. ASHA's, with its options), else its name."""
    return repr(obj) if type(obj).__repr__ is not object.__repr__ else type(obj).__name__


def space_size(space: Any) -> int | None:
    """The number of candidates of a finite space small enough to enumerate, else None."""
    if not len(space):
        return None  # define-by-run: the space is not known in advance
    bound = math.prod(p.cardinality() for p in space.params.values())
    if bound > _ENUMERABLE:  # inf for continuous parameters
        return None
    return int(space.size())


def _tried(trials: list[Any]) -> set[str]:
    """The distinct candidates with a finished trial (the study's own test of a finite space
    being done: it stops when every candidate has one)."""
    from airda.space import candidate_key

    return {candidate_key(t.params) for t in trials if t.state.finished}


def _check_flags(
    n_trials: int | None,
    workers: int | None,
    timeout: float | None,
    trials_flag: str = "--n-trials",
) -> None:
    if n_trials is not None and n_trials < 0:
        raise ValueError(f"{trials_flag} must be >= 0, got {n_trials}")
    if workers is not None and workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
        raise ValueError(f"--timeout must be > 0 seconds, got {timeout}")


@dataclass
class RunConfig:
    """A study's TOML file, checked and turned into objects (shared by ``airda run`` and
    ``airda worker``)."""

    path: Path
    config: dict[str, Any]
    objective: Any
    space: Any
    scheduler: Any
    strategy: Any
    storage: Any  # a path or URL, or a Storage once opened
    name: str | None
    n_trials: int | None
    timeout: float | None
    workers: int

    def create_study(self, *, load_if_exists: bool = True, stream: int = 0) -> Any:
        """The study the file describes, created, or loaded when it exists."""
        import airda

        study_cfg = self.config.get("study", {})
        return airda.create_study(
            self.name,
            storage=self.storage,
            space=self.space,
            strategy=self.strategy,
            direction=study_cfg.get("direction"),
            directions=study_cfg.get("directions"),
            scheduler=self.scheduler,
            load_if_exists=load_if_exists,
            stream=stream,
        )


def load_run_config(
    path: Path,
    *,
    storage: str | None,
    name: str | None,
    n_trials: int | None = None,
    workers: int | None = None,
    timeout: float | None = None,
    trials_flag: str = "--n-trials",
) -> RunConfig:
    """Read and check `path`; the flags given override the file's values. Nothing is opened
    or created yet."""
    from airda.cli.studies import check_storage

    _check_flags(n_trials, workers, timeout, trials_flag)
    config = read_config(path)
    study_cfg = dict(config.get("study", {}))
    budget = dict(config.get("budget", {}))
    objective = load_function(config["objective"]["function"])
    space = make_space(config["space"], path) if config.get("space") else None
    scheduler = make_scheduler(config["scheduler"], path) if "scheduler" in config else None
    options = dict(config.get("strategy", {}).get("options", {}))
    strategy = make_strategy(study_cfg, options, path)
    if storage is not None:
        check_storage(storage, "--storage")
    else:
        storage = study_cfg.get("storage", "airda-studies.db")
        check_storage(storage, f"{path}: [study] storage")
    return RunConfig(
        path=path,
        config=config,
        objective=objective,
        space=space,
        scheduler=scheduler,
        strategy=strategy,
        storage=storage,
        name=name or study_cfg.get("name"),
        n_trials=n_trials if n_trials is not None else budget.get("n_trials"),
        timeout=timeout if timeout is not None else budget.get("timeout"),
        workers=workers if workers is not None else int(budget.get("workers", 1)),
    )


def run_config(
    path: Path,
    *,
    storage: str | None,
    n_trials: int | None,
    workers: int | None,
    timeout: float | None,
    name: str | None,
) -> int:
    from airda._logging import TrialProgress
    from airda.cli.studies import is_reused, print_best

    cfg = load_run_config(
        path, storage=storage, name=name, n_trials=n_trials, workers=workers, timeout=timeout
    )
    space, strategy, scheduler = cfg.space, cfg.strategy, cfg.scheduler
    trials, limit, n_workers = cfg.n_trials, cfg.timeout, cfg.workers
    objective = cfg.objective
    if trials is None and limit is None and (space is None or space_size(space) is None):
        raise ValueError(
            f"{path}: give [budget] n_trials or timeout (or --n-trials / --timeout): "
            "without either the study never ends"
        )
    study = cfg.create_study()
    before = study.trials
    print(f"study {study.name!r} in {study.storage.url}: {_history(study, before)}", flush=True)
    size = space_size(study.space)
    note = ""
    if size is not None:
        left = size - len(_tried(before))
        if left <= 0:
            print(f"every one of the {size} candidates of the space has been tried")
            return print_best(study)
        if trials is None or trials > left:
            note = f" (the {left} untried of the space's {size} candidates)"
            trials = left
    print(
        f"running {trials if trials is not None else 'unlimited'} more{note} with "
        f"{strategy.name}{f' and {_label(scheduler)}' if scheduler is not None else ''}"
        f"{f' on {n_workers} workers' if n_workers > 1 else ''}"
        f"{f' for at most {limit:g} s' if limit is not None else ''}",
        flush=True,
    )
    progress = TrialProgress(study, trials)
    try:
        study.optimize(
            objective,
            n_trials=trials,
            timeout=limit,
            n_workers=n_workers,
            callbacks=[progress],
            show_progress=False,  # ours, with rate and ETA, and log lines off a terminal
        )
    finally:
        progress.close()
    new = study.trials[len(before) :]
    reused = sum(map(is_reused, new))
    if reused:
        print(
            f"this run: {len(new)} trials, {len(new) - reused} evaluated, {reused} reused the "
            "result of a candidate evaluated before"
        )
    return print_best(study)


def _history(study: Any, trials: list[Any]) -> str:
    """``new study`` or ``already has 12 trials (10 complete, 2 fail), best 0.1``."""
    if not trials:
        return "new study"
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    text = f"already has {len(trials)} trials ({', '.join(f'{n} {s}' for s, n in counts.items())})"
    if len(study.directions) == 1 and counts.get("complete"):
        text += f", best {study.best_value:.6g}"
    return text
