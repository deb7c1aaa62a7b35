"""Block rewrites of C loops for the rewrites library: loop fission through a small buffer.

``fission(i, b, 64)`` (or 256): an innermost loop whose body first computes a local scalar ``b`` from
the iteration (the bin of a histogram: a division, a conversion, clamps) and then does
something with it that the compiler cannot vectorise (``hist[b] += 1``) is cut into blocks of
64 (or 256) iterations; in each block a first loop, marked ``#pragma omp simd``, computes the
block's values of ``b`` into a local array, and a second loop runs the rest of the body on them. The
first loop vectorises (SSE2 divides, converts and clamps two doubles at a time); the second is
what the original loop did, minus the arithmetic.

Legal only where the split cannot change what the body computes, checked conservatively:

- the loop is a canonical ``for (int i = C; i < E; i++)`` with ``C`` a constant >= 0 (so
  ``E - i0`` cannot overflow), its body free of calls other than pure ``<math.h>`` functions,
  of loops, ``break``/``return``/``goto``;
- the body's first statements (the prefix) declare local scalars and assign only those (plain
  assignments and ``if``/``else`` of them), read no array the body writes and no scalar the
  rest assigns;
- exactly one of the prefix's locals is used after the prefix, and the rest of the body writes
  an array (otherwise there is nothing to gain);
- the prefix holds arithmetic (a binary operation), so it is worth a vector loop.

Semantics: the same operations on the same values in the same order per iteration; only the
iterations' prefixes of one block all run before their rests, which the checks make
unobservable. ``#pragma omp simd`` on the first loop is exact because its iterations are
independent (each writes its own buffer element and its own locals).

Example:
    >>> from airda.codeopt.evolve._rewrites_c import candidates
    >>> src = '''
    ... void hist(int *h, const double *x, int n, int nb) {
    ...     for (int i = 0; i < n; i++) {
    ...         int b = (int)(x[i] * nb);
    ...         if (b < 0) b = 0;
    ...         if (b >= nb) b = nb - 1;
    ...         h[b] += 1;
    ...     }
    ... }'''
    >>> [c.name for c in candidates(src, "hist") if c.kind == "fission"]
    ['fission(i, b, 64)', 'fission(i, b, 256)']
"""

from __future__ import annotations

from pycparser import c_ast

from airda.codeopt.evolve import _rewrites_c as rc

__all__ = ["BLOCKS", "t_fission"]

# Iterations per block: 64 keeps the buffer and the block's input in L1 (the faster on the
# bench machine's histogram), 256 amortises the block loop over more iterations.
BLOCKS = (64, 256)


def _prefix_ok(stmt: c_ast.Node, locals_: set[str]) -> bool:
    """A statement of the prefix: a scalar declaration with an initialiser, an assignment to
    one of `locals_`, or an ``if`` whose branches hold only such assignments."""
    if isinstance(stmt, c_ast.Decl):
        t = stmt.type
        if not isinstance(t, c_ast.TypeDecl) or not isinstance(t.type, c_ast.IdentifierType):
            return False
        if stmt.storage or "volatile" in t.quals or stmt.bitsize is not None:
            return False
        if stmt.init is None or not rc._plain(stmt.init):
            return False
        return rc._norm_type(t.type.names) is not None
    if isinstance(stmt, c_ast.Assignment):
        return (
            isinstance(stmt.lvalue, c_ast.ID)
            and stmt.lvalue.name in locals_
            and rc._plain(stmt.rvalue)
        )
    if isinstance(stmt, c_ast.If):
        if not rc._plain(stmt.cond):
            return False
        return all(
            _prefix_ok(s, locals_) and not isinstance(s, c_ast.Decl)
            for branch in (stmt.iftrue, stmt.iffalse)
            for s in rc._items(branch)
        )
    return False


def t_fission(site: rc._Site, types: dict, block: int = 256) -> tuple[str, str]:
    lp = site.info
    body = site.loop.stmt
    rc._innermost_ok(site)
    if lp.decl is None or lp.op != "<" or lp.ctype not in ("int", "long", "long long"):
        raise rc._Skip("the loop must declare its variable and run i < E")
    if not (isinstance(lp.start, c_ast.Constant) and lp.start.type == "int"):
        raise rc._Skip("the start must be a constant")
    try:
        start = int(lp.start.value.rstrip("uUlL"), 0)
    except ValueError:
        raise rc._Skip("the start must be a constant") from None
    if start < 0:
        raise rc._Skip("a negative start")
    items = rc._items(body)
    locals_: set[str] = set()
    k = 0
    while k < len(items) and _prefix_ok(items[k], locals_):
        if isinstance(items[k], c_ast.Decl):
            locals_.add(items[k].name)
        k += 1
    prefix, rest = items[:k], items[k:]
    if not prefix or not rest or not locals_:
        raise rc._Skip("no computed scalar before the rest of the body")
    pre_node, rest_node = c_ast.Compound(prefix), c_ast.Compound(rest)
    live = rc._ids(rest_node) & locals_
    if len(live) != 1:
        raise rc._Skip("the rest must use exactly one of the prefix's scalars")
    (name,) = live
    written = rc._written_arrays(body)
    if not rc._written_arrays(rest_node):
        raise rc._Skip("the rest writes no array")
    if written is None:
        raise rc._Skip("writes through a pointer")
    read_arrays = {rc._base_name(n) for n in rc._walk(pre_node) if isinstance(n, c_ast.ArrayRef)}
    if None in read_arrays or read_arrays & written:
        raise rc._Skip("the prefix reads an array the body writes")
    if rc._ids(pre_node) & (rc._assigned_scalars(rest_node) - {name}):
        raise rc._Skip("the prefix reads a scalar the rest assigns")
    if any(isinstance(d, c_ast.Decl) and d.name in locals_ for d in rc._walk(rest_node)):
        raise rc._Skip("the rest redeclares a prefix scalar")
    if not any(isinstance(n, c_ast.BinaryOp) for n in rc._walk(pre_node)):
        raise rc._Skip("nothing to compute in a vector loop")
    decl = next(d for d in prefix if isinstance(d, c_ast.Decl) and d.name == name)
    ctype = rc._norm_type(decl.type.type.names)
    if ctype is None:
        raise rc._Skip("the scalar's type")
    v, ity = lp.var, lp.ctype
    taken: set[str] = set()
    buf = rc._fresh(site.func, f"{name}_buf", taken)
    i0 = rc._fresh(site.func, f"{v}_blk", taken)
    i1 = rc._fresh(site.func, f"{v}_end", taken)
    end = rc._gen(lp.end)
    text = (
        f"{{ {ctype} {buf}[{block}];\n"
        f" for ({ity} {i0} = {start}; {i0} < ({end}); ) {{\n"
        f"  const {ity} {i1} = (({end}) - {i0} > {block}) ? {i0} + {block} : ({end});\n"
        "#pragma omp simd\n"
        f"  for ({ity} {v} = {i0}; {v} < {i1}; {v}++) {{ airda_pre_; {buf}[{v} - {i0}] = {name}; }}\n"
        f"  for ({ity} {v} = {i0}; {v} < {i1}; {v}++) {{ {ctype} {name} = {buf}[{v} - {i0}]; airda_rest_; }}\n"
        f"  {i0} = {i1};\n"
        " }\n}"
    )
    try:
        new = site.unit.snippet(text)[0]
    except Exception:
        raise rc._Skip("the split does not parse") from None
    outer = next(s for s in new.block_items if isinstance(s, c_ast.For))
    loops = [s for s in outer.stmt.block_items if isinstance(s, c_ast.For)]
    first, second = loops
    first.stmt.block_items[0:1] = prefix
    second.stmt.block_items[1:2] = rest
    rc._put(site, new)
    return (
        f"fission({v}, {name}, {block})",
        f"compute {name} for {block} iterations of the {v} loop at a time in a vector loop "
        f"(#pragma omp simd) into a buffer, then run the rest of the body on it",
    )
