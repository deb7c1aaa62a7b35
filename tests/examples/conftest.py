"""Transformers is imported first through airda.lm's importer: this checkout's ``kernels/``
folder would otherwise shadow the ``kernels`` package transformers imports."""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("transformers") is not None:
    from airda.lm._local import import_transformers

    import_transformers()
