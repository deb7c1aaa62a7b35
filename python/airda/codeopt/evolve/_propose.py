"""Proposers of new programs: a language model asked for SEARCH/REPLACE edits of a parent
(:class:`LMProposer`, any :mod:`airda.lm` backend), the deterministic rewrites library
(:class:`RewriteProposer`: tiling, unrolling, interchange, ``restrict``, ...; no model), and a
weighted mix of proposers (:class:`MixedProposer`).

A proposer gets the parent :class:`~airda.codeopt.evolve.Program`, a :class:`Context` (the
island's best programs, recent failures, the parent's profile) and returns
:class:`Proposal`\\ s: a whole new program, or a model's raw reply that the loop parses (a reply
that does not parse is recorded as the candidate's failure, "unparsable reply").

Example:
    >>> import random
    >>> from airda.codeopt.evolve import Context, LMProposer, Program
    >>> from airda.lm import tiny_model
    >>> parent = Program(0, "int f(int x) { return x + 1; }", None, -1, "reference", "",
    ...                  "", "", "done", True, 1e-6)
    >>> ctx = Context(language="c", entry="f", metric="time", reference=parent)
    >>> [p] = LMProposer(tiny_model(), max_tokens=8).propose(parent, ctx, 1, random.Random(0))
    >>> p.proposer, p.code is None, isinstance(p.reply, str)
    ('lm:tiny-random-llama-s0', True, True)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from airda.codeopt.evolve._database import Program

__all__ = [
    "Context",
    "LMProposer",
    "MixedProposer",
    "Proposal",
    "Proposer",
    "RewriteProposer",
]


@dataclass
class Context:
    """What a proposer knows beyond the parent.

    Attributes:
        language / entry / metric: from the spec (``metric``: ``time`` or ``score``).
        reference: the reference program (its value is the baseline).
        top: the island's best programs, best first (the parent may be among them).
        failures: recent failed children of the parent (their description and error).
        profile: a line on where the parent's time goes (see
            :func:`~airda.codeopt.evolve.profile_hint`).
        known: ``known(code)``: whether a program was evaluated already (a proposer may skip
            those; the loop never evaluates one twice anyway).
        threads: the threads a candidate may use (the spec's ``threads``: OpenMP).
    """

    language: str
    entry: str
    metric: str
    reference: Program
    top: list[Program] = field(default_factory=list)
    failures: list[Program] = field(default_factory=list)
    profile: str = ""
    known: Callable[[str], bool] = field(default=lambda code: False, repr=False)
    threads: int = 1


@dataclass(frozen=True)
class Proposal:
    """A proposed child: `code` (the whole program), or `reply` (a model's text, parsed by the
    loop against the parent); a one-line `description`, the `proposer`'s name and the `kind` of
    edit (for the diversity cells; the parser's kind when it is a reply)."""

    code: str | None
    description: str
    proposer: str
    kind: str = ""
    reply: str | None = None


@runtime_checkable
class Proposer(Protocol):
    """``propose(parent, context, n, rng) -> list[Proposal]`` (at most `n`; may be fewer, or
    none when it has nothing new). `name` labels its proposals."""

    name: str

    def propose(
        self, parent: Program, context: Context, n: int, rng: random.Random
    ) -> list[Proposal]: ...


_LANG_NAMES = {"c": "C", "cpp": "C++", "python": "Python", "triton": "Triton"}
# the code fence of each language's programs (a Triton program is a Python module)
_FENCES = {"triton": "python"}

_SYSTEM = (
    "You are an expert performance engineer. You improve programs by small, correct edits. "
    "The program must keep its function signature and compute the same outputs."
)


def _value_text(p: Program, context: Context) -> str:
    if p.value is None:
        return "failed"
    if context.metric == "time":
        from airda.codeopt.search import format_seconds

        ref = context.reference.value
        speed = f", {ref / p.value:.2f}x the reference" if ref and p.value > 0 else ""
        return f"{format_seconds(p.value)} per call{speed}"
    return f"score {p.value:.6g} (higher is better)"


class LMProposer:
    """Asks a language model for SEARCH/REPLACE edits of the parent.

    The prompt holds the parent's code with its time (or score) and profile line, the island's
    best programs (their values; the code of the best other than the parent), and the errors of
    the parent's recent failed children. `n` proposals are one batched call of the model.

    Args:
        lm: an :class:`~airda.lm.LM`, or what :func:`airda.lm.load` accepts (``"smollm2"``,
            ``"tiny"``, ``"http://host:port/v1?model=NAME"``).
        max_tokens: the most tokens of one reply.
        temperature: sampling temperature (each proposal gets its own seed from the rng).
        name: the proposer's name (default ``lm:<model name>``).
        show_top: how many of the island's best programs the prompt lists.
    """

    def __init__(
        self,
        lm: Any,
        *,
        max_tokens: int = 768,
        temperature: float = 0.8,
        name: str | None = None,
        show_top: int = 3,
    ):
        from airda.lm import load

        self.lm = load(lm) if isinstance(lm, str) else lm
        self.max_tokens = int(max_tokens)
        self.temperature = float(temperature)
        self.name = name or f"lm:{getattr(self.lm, 'name', type(self.lm).__name__)}"
        self.show_top = int(show_top)
        self.wants_profile = True  # the prompt shows a measured line profile of the parent

    def prompt(self, parent: Program, context: Context) -> list[dict[str, str]]:
        """The chat messages asking for edits of `parent`."""
        lang = _LANG_NAMES.get(context.language, context.language)
        fence = _FENCES.get(context.language, context.language)
        goal = (
            "Make it faster"
            if context.metric == "time"
            else "Make its score higher (the score is computed from its outputs)"
        )
        parts = [
            f"{goal}. Here is the current {lang} program (function `{context.entry}`), "
            f"{_value_text(parent, context)}:",
            f"```{fence}\n{parent.code.rstrip()}\n```",
        ]
        if context.language == "triton":
            parts.append(
                f"It is a Python module of Triton GPU kernels (@triton.jit) and their launcher "
                f"`{context.entry}`, which takes torch tensors and launches the kernels. Keep "
                f"`{context.entry}`'s signature and outputs; the kernels, the grid, the block "
                "sizes (powers of two), num_warps and num_stages may change."
            )
        if context.profile:
            parts.append(f"Profile: {context.profile}.")
        if context.threads > 1:
            parts.append(
                f"It may use {context.threads} threads: OpenMP pragmas are compiled in (-fopenmp)."
            )
        others = [p for p in context.top if p.number != parent.number][: self.show_top]
        if others:
            lines = [f"- {p.description or p.kind or 'program'}: {_value_text(p, context)}"
                     for p in others]  # fmt: skip
            parts.append("Best programs so far:\n" + "\n".join(lines))
            best = others[0]
            if best.value is not None and (parent.value is None or best.number != parent.number):
                parts.append(f"The best one:\n```{fence}\n{best.code.rstrip()}\n```")
        if context.failures:
            lines = [f"- {p.description or p.kind}: {(p.error or '')[:200]}"
                     for p in context.failures]  # fmt: skip
            parts.append("Recent attempts that failed (avoid these mistakes):\n" + "\n".join(lines))
        parts.append(
            "Reply with one line describing the change, then one or more edits in exactly this "
            "form (SEARCH must copy lines of the current program exactly):\n"
            "<<<<<<< SEARCH\n<lines to replace>\n=======\n<new lines>\n>>>>>>> REPLACE"
        )
        return [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": "\n\n".join(parts)},
        ]

    def propose(
        self, parent: Program, context: Context, n: int, rng: random.Random
    ) -> list[Proposal]:
        messages = self.prompt(parent, context)
        out = []
        for _ in range(n):
            # one call per proposal, each with its own seed (a batch of equal prompts with one
            # seed would give equal replies on backends that seed once per call)
            [c] = self.lm.chat(
                [messages],
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                seed=rng.randrange(2**31),
            )
            text = c.text
            first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
            desc = first if first and not first.startswith(("<<<", "```", "@@")) else ""
            out.append(Proposal(None, desc[:120], self.name, "", reply=text))
        return out


class RewriteProposer:
    """The deterministic rewrites library (tiling, unrolling, loop interchange, ``restrict``,
    hoisting, NumPy vectorisation of simple Python loops; Triton block sizes, ``num_warps``
    and ``num_stages``): no model. Rewrites of programs evaluated before are skipped.

    Args:
        limit: rewrites asked of the library per parent (the first `n` new ones are proposed).
        name: the proposer's name.
    """

    def __init__(self, *, limit: int = 16, name: str = "rewrites"):
        self.limit = int(limit)
        self.name = name

    def propose(
        self, parent: Program, context: Context, n: int, rng: random.Random
    ) -> list[Proposal]:
        from airda.codeopt.evolve._rewrites import rewrites

        found = rewrites(
            parent.code,
            context.language,
            context.entry,
            rng,
            limit=max(n, self.limit),
            parallel=context.threads > 1,
        )
        out = []
        for r in found:
            if context.known(r.source):
                continue
            kind = r.name.split("(", 1)[0].strip() or r.name
            out.append(Proposal(r.source, r.description or r.name, self.name, kind))
            if len(out) >= n:
                break
        return out


class MixedProposer:
    """Several proposers mixed by weight: each call draws one (by its weight) and asks it; when
    it proposes nothing, the others are asked in turn.

    Args:
        proposers: a mapping proposer -> weight, or a sequence of (proposer, weight) or of
            proposers (equal weights).
    """

    def __init__(self, proposers: Mapping[Any, float] | Sequence[Any]):
        items = list(proposers.items()) if isinstance(proposers, Mapping) else list(proposers)
        pairs = [(p, 1.0) if not isinstance(p, tuple) else p for p in items]
        if not pairs:
            raise ValueError("MixedProposer needs at least one proposer")
        for p, w in pairs:
            if not isinstance(p, Proposer):
                raise TypeError(f"{p!r} is not a proposer (needs name and propose())")
            if not w >= 0:
                raise ValueError(f"weights must be >= 0, got {w!r}")
        if not sum(w for _, w in pairs) > 0:
            raise ValueError("at least one weight must be > 0")
        self.pairs = pairs
        self.name = "mixed(" + ", ".join(p.name for p, _ in pairs) + ")"
        self.wants_profile = any(getattr(p, "wants_profile", False) for p, _ in pairs)

    def propose(
        self, parent: Program, context: Context, n: int, rng: random.Random
    ) -> list[Proposal]:
        weights = [w for _, w in self.pairs]
        first = rng.choices(range(len(self.pairs)), weights=weights)[0]
        order = [first] + [i for i in range(len(self.pairs)) if i != first and weights[i] > 0]
        for i in order:
            got = self.pairs[i][0].propose(parent, context, n, rng)
            if got:
                return got
        return []
