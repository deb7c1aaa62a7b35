"""Supernet checkpoints: a supernet's weights, its config and a training state, in one file.

:func:`save_checkpoint` writes atomically (a killed process leaves the previous file whole);
:func:`load_checkpoint` refuses a file saved from a supernet with another config, naming the
keys that differ. :func:`airda.nas.train_supernet` and the differentiable searches
(:mod:`airda.nas.differentiable`) resume from these files.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from airda.nas.supernet import Supernet

__all__ = ["load_checkpoint", "save_checkpoint"]

_CHECKPOINT_FORMAT = "airda-supernet-checkpoint/1"


def save_checkpoint(
    path: str | os.PathLike[str], supernet: Supernet, state: Mapping[str, Any] | None = None
) -> Path:
    """Write the supernet's weights, its config and `state` (anything torch can save: epoch,
    optimiser and scheduler state dicts, RNG states, ...) to `path`, atomically.

    Example:
        >>> import tempfile, os
        >>> from airda.nas.checkpoint import load_checkpoint, save_checkpoint
        >>> from airda.nas.supernet import NB201Supernet
        >>> net = NB201Supernet(dims=1, in_channels=1, C=4, N=1)
        >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.pt")
        >>> _ = save_checkpoint(path, net, {"epoch": 3})
        >>> load_checkpoint(path, NB201Supernet(dims=1, in_channels=1, C=4, N=1))["epoch"]
        3
        >>> load_checkpoint(path, NB201Supernet(dims=1, in_channels=1, C=8, N=1))
        Traceback (most recent call last):
        ...
        ValueError: ... was saved from another supernet: C is 4 there, 8 here
    """
    path = Path(path)
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "config": dict(supernet.config),
        "supernet": supernet.state_dict(),
        "state": dict(state or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike[str], supernet: Supernet) -> dict[str, Any]:
    """Load a :func:`save_checkpoint` file into `supernet`; return its saved state.

    The file is unpickled (it may hold optimiser states and RNG states): load only files you
    trust, as with ``torch.load``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an airda supernet checkpoint or cannot be read, or it was
            saved from a supernet with another config (the differing keys are named).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(payload, dict) or payload.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an airda supernet checkpoint")
    saved, here = payload["config"], supernet.config
    diffs = [
        f"{k} is {saved.get(k, '<absent>')!r} there, {here.get(k, '<absent>')!r} here"
        for k in sorted(set(saved) | set(here), key=lambda k: (k != "kind", k))
        if saved.get(k) != here.get(k)
    ]
    if diffs:
        raise ValueError(f"checkpoint {path} was saved from another supernet: {'; '.join(diffs)}")
    supernet.load_state_dict(payload["supernet"])
    return payload["state"]
