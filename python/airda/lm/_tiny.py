"""``tiny_model()``: a Llama with random weights and SmolLM2's tokenizer, built in seconds, so
that tests exercise the real code paths (tokenization, KV caches, batching, the server) without
loading the 135M-parameter model.

SmolLM2's tokenizer is read from the GGUF once and saved as ``tokenizer.json`` under airda's
cache folder (``$AIRDA_CACHE``, else ``$XDG_CACHE_HOME/airda``, else ``~/.cache/airda``), which
later loads in a fraction of a second.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from airda.lm._local import LocalLM, import_transformers, smollm2_path

__all__ = ["smollm2_tokenizer", "tiny_model"]

_TOKENIZER: Any = None
_LOCK = threading.RLock()
# Built models, shared by the LocalLMs tiny_model() returns (each with its own usage).
_MODELS: dict[tuple[Any, ...], Any] = {}
_MODEL_LOCKS: dict[tuple[Any, ...], Any] = {}


def _cache_dir() -> Path:
    for var in ("AIRDA_CACHE", "AIRDA_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "airda"


def smollm2_tokenizer() -> Any:
    """SmolLM2's tokenizer (a transformers fast tokenizer), loaded once per process."""
    global _TOKENIZER
    with _LOCK:
        if _TOKENIZER is not None:
            return _TOKENIZER
        transformers = import_transformers()
        gguf = smollm2_path()
        saved = _cache_dir() / "lm" / f"tokenizer-{gguf.stem}"
        if (saved / "tokenizer.json").is_file():
            try:
                _TOKENIZER = transformers.AutoTokenizer.from_pretrained(str(saved))
                return _TOKENIZER
            except Exception:  # a damaged cache entry: rebuild it below
                shutil.rmtree(saved, ignore_errors=True)
        tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        try:
            saved.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=saved.parent, prefix=".tokenizer-"))
            tok.save_pretrained(str(tmp))
            try:
                tmp.rename(saved)
            except OSError:  # another process saved it first
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:  # a read-only cache: the tokenizer still works
            pass
        _TOKENIZER = tok
        return tok


def tiny_model(*, seed: int = 0, layers: int = 2, hidden: int = 64, device: Any = None) -> LocalLM:
    """A :class:`LocalLM` with random weights (a small Llama) and SmolLM2's tokenizer.

    Its text is gibberish, but every code path of a real model runs: use it in tests and
    examples that check mechanics, not answers. The same `seed` gives the same weights.

    Args:
        seed: seeds the random weights.
        layers: decoder layers.
        hidden: the hidden size (4 attention heads, 2 key-value heads).
        device: a torch device; None picks CUDA when available.

    Example:
        >>> from airda.lm import tiny_model
        >>> lm = tiny_model()
        >>> [c.completion_tokens for c in lm.generate(["Hello"], max_tokens=3)]
        [3]
    """
    import torch

    transformers = import_transformers()
    tok = smollm2_tokenizer()
    if hidden % 4 or hidden < 8:
        raise ValueError(f"hidden must be a multiple of 4 and >= 8, got {hidden}")
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    key = (seed, layers, hidden, str(device))
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            state = torch.random.get_rng_state()
            try:
                torch.manual_seed(seed)
                model = transformers.LlamaForCausalLM(config)
            finally:
                torch.random.set_rng_state(state)
            _MODELS[key] = model
    lm = LocalLM.from_objects(model, tok, name=f"tiny-random-llama-s{seed}", device=device)
    lm._lock = _MODEL_LOCKS.setdefault(key, lm._lock)  # one lock per shared model
    return lm
