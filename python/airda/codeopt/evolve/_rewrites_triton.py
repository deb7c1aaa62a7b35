"""Deterministic rewrites of Triton programs (a module of ``@triton.jit`` kernels and their
launcher): a kernel's block-size constant halved or doubled, and the launch options
``num_warps`` and ``num_stages`` changed or added. No model.

A block-size constant is a ``tl.constexpr`` parameter of a kernel whose name says it is a block
or tile (``BLOCK``, ``BLOCK_SIZE``, ``BLOCK_M``, ``TILE_N``, ...) and whose value is a power of
two written as a literal: in the launch (``kernel[grid](..., BLOCK=16)``), in the one
assignment of the name the launch passes (``BLOCK = 16`` in the launcher or the module), or as
the parameter's default when no launch passes it. It moves within powers of two from
:data:`MIN_BLOCK` to :data:`MAX_BLOCK`; ``num_warps`` within 1..8 (powers of two; 2 and 8 are
added where the launch leaves Triton's default of 4), ``num_stages`` by one within 1..5 (2 and
4 added where absent). Only the literal changes: the program's text, comments and layout stay
as they were. A block that no longer covers what the kernel assumes fails the cascade's tests,
as any wrong candidate does.

Example:
    >>> src = '''
    ... import triton
    ... import triton.language as tl
    ...
    ... @triton.jit
    ... def add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr):
    ...     offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ...     m = offs < n
    ...     tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=m) + tl.load(y_ptr + offs, mask=m),
    ...              mask=m)
    ...
    ... def add(x, y, out, n):
    ...     BLOCK = 64
    ...     add_kernel[(triton.cdiv(n, BLOCK),)](x, y, out, n, BLOCK=BLOCK, num_warps=4)
    ... '''
    >>> [c.name for c in candidates(src, "add")]  # doctest: +NORMALIZE_WHITESPACE
    ['block(BLOCK, 64->32)', 'block(BLOCK, 64->128)', 'num_warps(add_kernel, 4->2)',
     'num_warps(add_kernel, 4->8)', 'num_stages(add_kernel, +2)', 'num_stages(add_kernel, +4)']
    >>> "BLOCK = 128" in candidates(src, "add")[1].source
    True
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from airda.codeopt.evolve._candidate import Candidate
from airda.codeopt.evolve._triton import jit_kernels

__all__ = ["MAX_BLOCK", "MIN_BLOCK", "Candidate", "Launch", "candidates", "launches"]

#: The range of block-size constants the rewrites move in (powers of two).
MIN_BLOCK = 16
MAX_BLOCK = 1 << 16
_WARPS = (1, 2, 4, 8)
_STAGES = (1, 5)
_BLOCK_NAME = re.compile(r"BLOCK|TILE", re.I)
_OPTIONS = ("num_warps", "num_stages")


@dataclass(frozen=True)
class Launch:
    """One launch of a kernel in the program: the kernel, the line, and the block constants
    and launch options it passes (their literal values, or None when not a literal)."""

    kernel: str
    line: int
    options: dict[str, int | None]

    def describe(self) -> str:
        opts = (
            ", ".join(f"{k}={'?' if v is None else v}" for k, v in self.options.items())
            or "no block constant or launch option"
        )
        return f"{self.kernel} (line {self.line}: {opts})"


@dataclass(frozen=True)
class _Site:
    """An integer literal a rewrite may change: what it is (`kind`, `label`), its value and
    where its text is (offsets into the source)."""

    kind: str
    label: str
    value: int
    start: int
    end: int
    line: int


def _offsets(source: str) -> list[int]:
    """The offset of each line's first character (index 0: line 1)."""
    out, pos = [], 0
    for line in source.splitlines(keepends=True):
        out.append(pos)
        pos += len(line)
    out.append(pos)
    return out


def _pos(source: str, starts: list[int], lineno: int, col: int) -> int:
    """The string offset of (line, UTF-8 byte column) as :mod:`ast` gives them."""
    line = source[starts[lineno - 1] : starts[lineno]]
    return starts[lineno - 1] + len(line.encode()[:col].decode(errors="replace"))


def _int_literal(node: ast.AST | None) -> int | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    ):
        return node.value
    return None


def _is_constexpr(ann: ast.expr | None) -> bool:
    if isinstance(ann, ast.Attribute):
        return ann.attr == "constexpr"
    if isinstance(ann, ast.Name):
        return ann.id == "constexpr"
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        return ann.value.endswith("constexpr")
    return False


def _kernel_params(tree: ast.Module) -> dict[str, tuple[list[str], dict[str, ast.expr]]]:
    """kernel -> (its parameter names, the defaults of its block constexprs)."""
    names = set(jit_kernels(tree))
    out: dict[str, tuple[list[str], dict[str, ast.expr]]] = {}
    for fn in tree.body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name in names):
            continue
        params = [*fn.args.posonlyargs, *fn.args.args]
        with_default = [p.arg for p in params][len(params) - len(fn.args.defaults) :]
        defaults = dict(zip(with_default, fn.args.defaults, strict=True))
        blocks = {
            p.arg: defaults.get(p.arg)
            for p in params
            if _is_constexpr(p.annotation) and _BLOCK_NAME.search(p.arg)
        }
        out[fn.name] = ([p.arg for p in params], blocks)
    return out


def _assignments(scope: ast.AST, name: str) -> list[ast.expr]:
    """The values assigned to `name` directly in `scope` (a function or the module), not in
    nested functions."""
    found: list[ast.expr] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Assign):
                for t in child.targets:
                    if isinstance(t, ast.Name) and t.id == name:
                        found.append(child.value)
                    elif isinstance(t, ast.Tuple | ast.List) and any(
                        isinstance(e, ast.Name) and e.id == name for e in t.elts
                    ):  # a, BLOCK = ...: not a literal
                        found.append(ast.Tuple(elts=[], ctx=ast.Load()))
            elif isinstance(child, ast.AnnAssign | ast.AugAssign):
                t = child.target
                if isinstance(t, ast.Name) and t.id == name:
                    found.append(
                        child.value
                        if isinstance(child, ast.AnnAssign) and child.value is not None
                        else ast.Tuple(elts=[], ctx=ast.Load())
                    )
            walk(child)

    walk(scope)
    return found


class _Finder:
    def __init__(self, source: str, tree: ast.Module):
        self.source = source
        self.tree = tree
        self.starts = _offsets(source)
        self.kernels = _kernel_params(tree)
        self.sites: dict[tuple[int, int], _Site] = {}
        self.inserts: list[tuple[str, str, int, int]] = []  # option, kernel, offset, line
        self.launches: list[Launch] = []

    def _site(self, kind: str, label: str, node: ast.expr) -> None:
        v = _int_literal(node)
        if v is None:
            return
        start = _pos(self.source, self.starts, node.lineno, node.col_offset)
        end = _pos(
            self.source, self.starts, node.end_lineno or node.lineno, node.end_col_offset or 0
        )
        self.sites.setdefault((start, end), _Site(kind, label, v, start, end, node.lineno))

    def _resolve(self, value: ast.expr, scope: ast.AST | None) -> ast.expr | None:
        """The int literal a launch argument is: itself, or the one assignment of the name
        it is in the enclosing function (else the module)."""
        if _int_literal(value) is not None:
            return value
        if not isinstance(value, ast.Name):
            return None
        for where in (scope, self.tree):
            if where is None:
                continue
            found = _assignments(where, value.id)
            if found:
                return found[0] if len(found) == 1 and _int_literal(found[0]) is not None else None
        return None

    def run(self) -> None:
        passed: set[tuple[str, str]] = set()
        scopes: list[tuple[ast.AST | None, ast.AST]] = []
        for top in self.tree.body:
            if isinstance(top, ast.FunctionDef) and top.name in self.kernels:
                continue  # a kernel's body launches nothing
            scope = top if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) else None
            scopes.extend((scope, n) for n in ast.walk(top))
        for scope, node in scopes:
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Subscript)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in self.kernels
            ):
                continue
            kernel = node.func.value.id
            params, blocks = self.kernels[kernel]
            given: dict[str, ast.expr] = {}
            for i, a in enumerate(node.args):
                if isinstance(a, ast.Starred):
                    break
                if i < len(params):
                    given[params[i]] = a
            for kw in node.keywords:
                if kw.arg is not None:
                    given[kw.arg] = kw.value
            options: dict[str, int | None] = {}
            for name, value in given.items():
                if name not in blocks and name not in _OPTIONS:
                    continue
                passed.add((kernel, name))
                lit = self._resolve(value, scope)
                options[name] = _int_literal(lit)
                if lit is not None:
                    kind = "block" if name in blocks else name
                    label = name if kind == "block" else kernel
                    self._site(kind, label, lit)
            self.launches.append(Launch(kernel, node.lineno, options))
            items = [*node.args, *node.keywords]
            if not items:
                continue
            last = max(items, key=lambda n: (n.end_lineno or 0, n.end_col_offset or 0))
            at = _pos(self.source, self.starts, last.end_lineno or 0, last.end_col_offset or 0)
            for opt in _OPTIONS:
                if opt not in given and not any(k.arg is None for k in node.keywords):
                    self.inserts.append((opt, kernel, at, node.lineno))
        # a block constexpr's default, where no launch passes it
        for kernel, (_, blocks) in self.kernels.items():
            for name, default in blocks.items():
                if default is not None and (kernel, name) not in passed:
                    self._site("block", name, default)


def _find(source: str) -> _Finder | None:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    f = _Finder(source, tree)
    f.run()
    return f


def launches(source: str) -> list[Launch]:
    """The kernel launches of a Triton program with their block constants and options."""
    f = _find(source)
    return [] if f is None else f.launches


def _pow2(v: int) -> bool:
    return v > 0 and v & (v - 1) == 0


def candidates(source: str, entry: str) -> list[Candidate]:
    """Every rewrite that applies to the Triton program `source`, in a fixed order (the
    entry's name does not matter: a launch anywhere in the module counts)."""
    f = _find(source)
    if f is None:
        return []
    out: list[Candidate] = []

    def add(kind: str, name: str, text: str, desc: str) -> None:
        try:
            compile(text, "<rewrite>", "exec")
        except (SyntaxError, ValueError):
            return
        out.append(Candidate(kind, name, text, desc))

    for s in sorted(f.sites.values(), key=lambda s: s.start):
        if s.kind == "block":
            if not _pow2(s.value):
                continue
            new = [v for v in (s.value // 2, s.value * 2) if MIN_BLOCK <= v <= MAX_BLOCK]
        elif s.kind == "num_warps":
            if s.value not in _WARPS:
                continue
            i = _WARPS.index(s.value)
            new = [_WARPS[j] for j in (i - 1, i + 1) if 0 <= j < len(_WARPS)]
        else:
            new = [v for v in (s.value - 1, s.value + 1) if _STAGES[0] <= v <= _STAGES[1]]
        for v in new:
            text = f.source[: s.start] + str(v) + f.source[s.end :]
            what = "halved" if v < s.value else "doubled" if s.kind != "num_stages" else "changed"
            add(
                s.kind,
                f"{s.kind}({s.label}, {s.value}->{v})",
                text,
                f"{s.label if s.kind == 'block' else s.kind} {what} to {v} (line {s.line})"
                + ("" if s.kind == "block" else f" in the launch of {s.label}"),
            )
    for opt, kernel, at, line in f.inserts:
        for v in (2, 8) if opt == "num_warps" else (2, 4):
            text = f.source[:at] + f", {opt}={v}" + f.source[at:]
            add(
                opt,
                f"{opt}({kernel}, +{v})",
                text,
                f"{opt}={v} added to the launch of {kernel} (line {line}; Triton's default "
                f"{'4' if opt == 'num_warps' else '3'})",
            )
    return out
