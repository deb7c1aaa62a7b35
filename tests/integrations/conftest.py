"""Fixtures of the integration tests: tiny models train on one thread (on a loaded 2-core
machine torch's default of one thread per core makes each step of a tiny model wait ~100x
longer for the other thread).

Transformers is imported here first, through airda.lm's importer: this checkout's
``kernels/`` folder would otherwise shadow the ``kernels`` package transformers imports
(Lightning's imports can pull transformers in before the test modules do)."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("transformers") is not None:
    from airda.lm._local import import_transformers

    import_transformers()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
