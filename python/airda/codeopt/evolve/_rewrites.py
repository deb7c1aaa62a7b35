"""A library of deterministic program rewrites: the proposer of code evolution that needs no
language model.

For C (and C++ written in the C subset) the rewrites work on a pycparser parse: loop unrolling
with a remainder loop, partial sums of a reduction, loop interchange (with a scalar accumulator
first stored in place when that is what blocks it), tiling of 2-deep nests, ``restrict`` on the
pointer parameters, hoisting of loop-invariant expressions, a reciprocal for an invariant
divisor, scalar replacement of an array element updated across a loop, carrying a loop's
previous element in a register, ``#pragma GCC ivdep`` / ``omp simd`` / ``GCC unroll``, loop
fission through a block buffer (``_rewrites_c_block``), ``exp`` as an inline vectorisable
function and a clone of the entry for AVX+FMA behind a CPU check (``_rewrites_c_vec``). For
Python they work on :mod:`ast`: NumPy vectorisation of element-wise loops, of sum and dot
reductions and of a matrix-multiply nest, and hoisting of invariant expressions. For Triton
(``_rewrites_triton``): a kernel's block-size constant halved or doubled, and the launch
options ``num_warps`` and ``num_stages``.

Each transform applies only where a conservative check finds it legal; the search's cascade
(compile, tests, timing) judges every candidate anyway. A rewrite's source parses again, so
rewrites compose over generations.

Example:
    >>> import random
    >>> src = '''
    ... void scale(double *y, const double *x, int n) {
    ...     for (int i = 0; i < n; i++) y[i] = 2.0 * x[i];
    ... }'''
    >>> names = [r.name for r in rewrites(src, "c", "scale", random.Random(0), limit=50)]
    >>> "restrict" in names and "unroll(i, 4)" in names
    True
    >>> rewrites("template <class T> T f(T x) { return x; }", "cpp", "f", random.Random(0))
    []
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

__all__ = ["Rewrite", "rewrites"]

_MAX_SOURCE = 200_000


@dataclass(frozen=True)
class Rewrite:
    """One rewritten program.

    Args:
        name: the transform and where it applied, e.g. ``"unroll(i, 4)"``,
            ``"interchange(j, k)"``, ``"restrict"``, ``"tile(i, j, 32)"``.
        source: the whole new source text (same entry point).
        description: one line for the lineage report: the name, a colon, what changed.
    """

    name: str
    source: str
    description: str


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def rewrites(
    source: str,
    language: str,
    entry: str,
    rng: random.Random,
    limit: int = 8,
    *,
    parallel: bool = False,
) -> list[Rewrite]:
    """Up to `limit` distinct candidate rewrites of `source`.

    Args:
        source: the program's text.
        language: ``"c"``, ``"cpp"`` (the C subset), ``"python"`` or ``"triton"``.
        entry: the function to rewrite (its name and signature are kept).
        rng: draws which candidates are returned when more than `limit` apply, spread over
            the kinds of transform; the same seed gives the same list.
        limit: the most rewrites returned.
        parallel: C/C++: also propose ``#pragma omp parallel for`` on loops whose
            iterations are independent (for a spec with more than one thread).

    Returns:
        The rewrites (each different from `source` and from the others); ``[]`` when none
        applies or the source cannot be parsed. Never raises on bad code.
    """
    if not isinstance(source, str) or not source.strip() or limit <= 0:
        return []
    if len(source) > _MAX_SOURCE:
        return []
    lang = str(language).lower()
    try:
        if lang in ("c", "cpp", "c++", "cxx"):
            from airda.codeopt.evolve import _rewrites_c

            cands = [
                (c.kind, Rewrite(c.name, c.source, f"{c.name}: {c.description}"))
                for c in _rewrites_c.candidates(source, entry, cpp=lang != "c", parallel=parallel)
            ]
        elif lang == "triton":
            from airda.codeopt.evolve import _rewrites_triton

            cands = [
                (c.kind, Rewrite(c.name, c.source, f"{c.name}: {c.description}"))
                for c in _rewrites_triton.candidates(source, entry)
            ]
        elif lang in ("python", "py"):
            from airda.codeopt.evolve import _rewrites_py

            cands = [
                (c.kind, Rewrite(c.name, c.source, f"{c.name}: {c.description}"))
                for c in _rewrites_py.candidates(source, entry)
            ]
        else:
            return []
    except (Exception, RecursionError):
        return []
    seen = {_norm(source)}
    by_kind: dict[str, list[Rewrite]] = {}
    for kind, r in cands:
        key = _norm(r.source)
        if key in seen:
            continue
        seen.add(key)
        by_kind.setdefault(kind, []).append(r)
    # Round-robin over the kinds in a drawn order: a sample spread over unroll, tile, hoist...
    # rather than eight unroll factors of eight loops.
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    for k in kinds:
        rng.shuffle(by_kind[k])
    out: list[Rewrite] = []
    while len(out) < limit and any(by_kind[k] for k in kinds):
        for k in kinds:
            if by_kind[k] and len(out) < limit:
                out.append(by_kind[k].pop(0))
    return out
