"""Deterministic rewrites of C kernels (and of C++ kernels written in the C subset) on a real
parse: pycparser's C99 parser and code generator.

Each transform is applied only where a conservative check says it keeps the program's meaning
(the cascade of the search tests every candidate anyway): canonical counted ``for`` loops
(``for (int i = a; i < b; i++)`` with ``b`` free of side effects and of writes in the body),
bodies without ``break``/``continue``/``return``/``goto`` and without calls other than the
pure functions of ``<math.h>``. Preprocessor lines (``#include``, ``#define``) are taken out
before the parse and put back at the top of the rewritten source; ``#pragma`` lines stay where
they are (pycparser keeps them as statements). Comments do not survive a rewrite. A source with
conditional compilation (``#if``), GNU attributes, templates or anything else pycparser cannot
read gives no rewrites.

The rewritten text is pycparser's regenerated C, which parses again: rewrites compose.
"""

from __future__ import annotations

import contextvars
import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pycparser import c_ast, c_generator, c_parser

from airda.codeopt.evolve._candidate import Candidate

__all__ = ["Candidate", "candidates"]


class _Skip(Exception):
    """A transform does not apply at this site."""


# Names the C and C++ standard headers declare as types: pycparser needs them declared, so a
# source that uses them is parsed behind fake typedefs (removed again from the output).
_FAKE_TYPES = {
    "size_t": "unsigned long",
    "ssize_t": "long",
    "ptrdiff_t": "long",
    "intptr_t": "long",
    "uintptr_t": "unsigned long",
    "int8_t": "int",
    "uint8_t": "int",
    "int16_t": "int",
    "uint16_t": "int",
    "int32_t": "int",
    "uint32_t": "unsigned int",
    "int64_t": "long long",
    "uint64_t": "unsigned long long",
    "bool": "int",
}
_FAKE_DECL = {
    "size_t": "unsigned long",
    "ssize_t": "long",
    "ptrdiff_t": "long",
    "intptr_t": "long",
    "uintptr_t": "unsigned long",
    "int8_t": "signed char",
    "uint8_t": "unsigned char",
    "int16_t": "short",
    "uint16_t": "unsigned short",
    "int32_t": "int",
    "uint32_t": "unsigned int",
    "int64_t": "long long",
    "uint64_t": "unsigned long long",
    "bool": "_Bool",
}

# Pure functions of <math.h>: a call to one of them does not stop a transform.
_PURE = {
    f + s
    for f in (
        "exp",
        "exp2",
        "expm1",
        "log",
        "log2",
        "log10",
        "log1p",
        "sqrt",
        "cbrt",
        "fabs",
        "pow",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "tanh",
        "fmax",
        "fmin",
        "floor",
        "ceil",
        "round",
        "trunc",
        "fma",
        "hypot",
        "erf",
    )
    for s in ("", "f")
} | {"abs", "labs", "llabs", "airda_exp"}  # airda_exp: the rewrites' own (_rewrites_c_vec)

# Function-like macros of the source that expand to pure expressions (no assignment, no call
# other than to pure functions or their own parameters): a use of one is a pure call.
_PURE_MACROS: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "airda_pure_macros", default=frozenset()
)
_MACRO = re.compile(r"#\s*define\s+([A-Za-z_]\w*)\(([^)]*)\)(.*)")


def _pure_macros(header: list[str]) -> frozenset[str]:
    out: set[str] = set()
    for line in header:
        m = _MACRO.fullmatch(line.strip())
        if not m:
            continue
        name, params, body = m.group(1), m.group(2), m.group(3)
        if re.search(r"(?<![=!<>])=(?!=)|\+\+|--|[+\-*/%&|^]=|<<=|>>=", body):
            continue
        called = set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", body))
        ok = {p.strip() for p in params.split(",")} | _PURE | out
        if called <= ok:
            out.add(name)
    return frozenset(out)


def _is_pure_call(n: c_ast.FuncCall) -> bool:
    if not isinstance(n.name, c_ast.ID):
        return False
    return n.name.name in _PURE or n.name.name in _PURE_MACROS.get()


_COMMENT_OR_STRING = re.compile(
    r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.DOTALL
)
_EXTERN_C = re.compile(r'\bextern\s*"C"\s*(?![\s{])')
_EXTERN_C_NAME = re.compile(r'\bextern\s*"C"\s+[^;{(]*?\b([A-Za-z_]\w*)\s*\(')


def _strip_comments(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        s = m.group(0)
        if s.startswith(("//", "/*")):
            return " " + "\n" * s.count("\n")
        return s

    return _COMMENT_OR_STRING.sub(repl, text)


@dataclass
class _Unit:
    """A parsed source: the AST, the preprocessor lines to put back, the fake typedefs."""

    ast: c_ast.FileAST
    n_fake: int
    prefix: str
    header: list[str]
    extern_c: list[str]
    cpp: bool

    def render(self) -> str:
        body = c_generator.CGenerator().visit(c_ast.FileAST(self.ast.ext[self.n_fake :]))
        for name in self.extern_c:
            body = re.sub(
                rf"^(?=[^\n]*\b{re.escape(name)}\s*\()",
                'extern "C" ',
                body,
                count=1,
                flags=re.MULTILINE,
            )
        if self.cpp:
            body = re.sub(r"\brestrict\b", "__restrict__", body)
        head = "\n".join(self.header)
        return (head + "\n\n" if head else "") + body.strip() + "\n"

    def snippet(self, text: str) -> list[c_ast.Node]:
        """The statements of `text`, parsed in this unit's type context."""
        tree = c_parser.CParser().parse(f"{self.prefix}\nvoid airda_snippet_(void) {{\n{text}\n}}")
        return list(tree.ext[-1].body.block_items or [])


def parse(source: str, cpp: bool) -> _Unit | None:
    """Parse `source`, or None when it is not in the C subset pycparser reads."""
    text = _strip_comments(source.replace("\r\n", "\n"))
    text = re.sub(r"\\\n", "", text)
    header: list[str] = []
    lines = []
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith("#"):
            word = s[1:].strip().split(None, 1)[0] if s[1:].strip() else ""
            if word == "pragma":
                lines.append(s)
                continue
            if word in ("include", "define", "undef"):
                header.append(s)
                lines.append("")
                continue
            return None
        lines.append(line)
    text = "\n".join(lines)
    extern_c = _EXTERN_C_NAME.findall(text) if cpp else []
    if cpp:
        if re.search(r'\bextern\s*"C"\s*\{', text):
            return None
        text = _EXTERN_C.sub("", text)
    text = re.sub(r"\b__restrict(__)?\b", "restrict", text)
    text = re.sub(r"\b__inline(__)?\b", "inline", text)
    fakes = [n for n in _FAKE_DECL if re.search(rf"\b{n}\b", text)]
    prefix = " ".join(f"typedef {_FAKE_DECL[n]} {n};" for n in fakes)
    try:
        tree = c_parser.CParser().parse(prefix + text)
    except Exception:
        return None
    return _Unit(tree, len(fakes), prefix, header, extern_c, cpp)


# --- AST helpers ------------------------------------------------------------------------------


def _gen(node: c_ast.Node) -> str:
    return c_generator.CGenerator().visit(node)


def _walk(node: c_ast.Node | None) -> Iterator[c_ast.Node]:
    if node is None:
        return
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(c for _, c in reversed(list(n.children())))


def _preorder(node: c_ast.Node) -> Iterator[tuple[c_ast.Node, c_ast.Node | None]]:
    """(node, parent) pairs in source order."""
    stack: list[tuple[c_ast.Node, c_ast.Node | None]] = [(node, None)]
    while stack:
        n, p = stack.pop()
        yield n, p
        stack.extend((c, n) for _, c in reversed(list(n.children())))


def _replace(parent: c_ast.Node, old: c_ast.Node, new: c_ast.Node) -> None:
    for name, child in parent.children():
        if child is old:
            m = re.fullmatch(r"(\w+)\[(\d+)\]", name)
            if m:
                getattr(parent, m.group(1))[int(m.group(2))] = new
            else:
                setattr(parent, name, new)
            return
    raise _Skip("node not found in its parent")


def _subst(node: c_ast.Node, name: str, make: Callable[[], c_ast.Node]) -> c_ast.Node:
    """A copy of `node` with every ``ID(name)`` replaced by ``make()``."""
    node = copy.deepcopy(node)
    if isinstance(node, c_ast.ID) and node.name == name:
        return make()
    for n, p in list(_preorder(node)):
        if p is not None and isinstance(n, c_ast.ID) and n.name == name:
            _replace(p, n, make())
    return node


def _ids(node: c_ast.Node | None) -> set[str]:
    out = set()
    for n in _walk(node):
        if isinstance(n, c_ast.ID):
            out.add(n.name)
        elif isinstance(n, c_ast.FuncCall) and isinstance(n.name, c_ast.ID):
            out.discard(n.name.name)
    # a call's name is an ID too; calls are checked separately
    return out


def _base_name(node: c_ast.Node) -> str | None:
    while isinstance(node, c_ast.ArrayRef):
        node = node.name
    return node.name if isinstance(node, c_ast.ID) else None


def _lvalues(node: c_ast.Node | None) -> list[c_ast.Node]:
    out = []
    for n in _walk(node):
        if isinstance(n, c_ast.Assignment):
            out.append(n.lvalue)
        elif isinstance(n, c_ast.UnaryOp) and n.op in ("++", "--", "p++", "p--", "&"):
            out.append(n.expr)
    return out


def _assigned_scalars(node: c_ast.Node | None) -> set[str]:
    """Names assigned (or whose address is taken, or declared) in `node`."""
    out = {lv.name for lv in _lvalues(node) if isinstance(lv, c_ast.ID)}
    out |= {n.name for n in _walk(node) if isinstance(n, c_ast.Decl) and n.name}
    return out


def _written_arrays(node: c_ast.Node | None) -> set[str] | None:
    """Base names of the arrays written in `node`; None when something is written through a
    pointer or a structure (unknown target)."""
    out = set()
    for lv in _lvalues(node):
        if isinstance(lv, c_ast.ID):
            continue
        base = _base_name(lv) if isinstance(lv, c_ast.ArrayRef) else None
        if base is None:
            return None
        out.add(base)
    return out


def _impure(node: c_ast.Node | None) -> bool:
    for n in _walk(node):
        if isinstance(n, c_ast.FuncCall):
            if not _is_pure_call(n):
                return True
        elif isinstance(
            n, c_ast.Return | c_ast.Break | c_ast.Continue | c_ast.Goto | c_ast.Label | c_ast.Switch
        ):
            return True
    return False


def _has_loop(node: c_ast.Node | None) -> bool:
    return any(isinstance(n, c_ast.For | c_ast.While | c_ast.DoWhile) for n in _walk(node))


def _items(stmt: c_ast.Node | None) -> list[c_ast.Node]:
    if stmt is None:
        return []
    if isinstance(stmt, c_ast.Compound):
        return list(stmt.block_items or [])
    return [stmt]


def _single(stmt: c_ast.Node | None) -> c_ast.Node | None:
    items = _items(stmt)
    return items[0] if len(items) == 1 else None


def _simple_expr(node: c_ast.Node | None) -> bool:
    """Side-effect free and free of memory reads: constants, names, arithmetic, comparisons
    and ``?:`` (the ``min`` of a tile's bound)."""
    if node is None:
        return False
    for n in _walk(node):
        if not isinstance(
            n, c_ast.ID | c_ast.Constant | c_ast.BinaryOp | c_ast.Cast | c_ast.TernaryOp
        ):
            if isinstance(n, c_ast.UnaryOp) and n.op in ("-", "+"):
                continue
            if isinstance(n, c_ast.Typename | c_ast.TypeDecl | c_ast.IdentifierType):
                continue
            return False
    return True


# --- types ------------------------------------------------------------------------------------

_RANKS = [
    "long double",
    "double",
    "float",
    "unsigned long long",
    "long long",
    "unsigned long",
    "long",
    "unsigned int",
    "int",
]


def _norm_type(names: list[str]) -> str | None:
    ws = [w for w in names if w not in ("signed",)]
    if len(ws) == 1 and ws[0] in _FAKE_TYPES:
        return _FAKE_TYPES[ws[0]]
    s = " ".join(w for w in ws if w != "int" or ws == ["int"] or ws == ["unsigned", "int"])
    s = {"unsigned": "unsigned int", "": "int", "long int": "long"}.get(s, s)
    if s in ("char", "unsigned char", "short", "unsigned short", "_Bool"):
        return "int"
    return s if s in _RANKS else None


def _decl_types(unit: _Unit, func: c_ast.FuncDef) -> dict[str, tuple[str, int] | None]:
    """Each name declared in the file's globals and in `func` -> (element type, pointer
    depth); None for a name declared twice with different types."""
    out: dict[str, tuple[str, int] | None] = {}
    decls = [e for e in unit.ast.ext[unit.n_fake :] if isinstance(e, c_ast.Decl)]
    decls += [n for n in _walk(func) if isinstance(n, c_ast.Decl)]
    for d in decls:
        t, depth = d.type, 0
        while isinstance(t, c_ast.PtrDecl | c_ast.ArrayDecl):
            t, depth = t.type, depth + 1
        if not d.name or not isinstance(t, c_ast.TypeDecl):
            continue
        if not isinstance(t.type, c_ast.IdentifierType):
            continue
        base = _norm_type(t.type.names)
        val = (base, depth) if base else None
        if d.name in out and out[d.name] != val:
            out[d.name] = None
        else:
            out[d.name] = val
    return out


def _arith(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return None
    return _RANKS[min(_RANKS.index(a), _RANKS.index(b))]


def _type_of(e: c_ast.Node, types: dict[str, tuple[str, int] | None]) -> str | None:
    """The C type of a scalar expression, or None when not known."""
    if isinstance(e, c_ast.Constant):
        if e.type in ("int", "char"):
            v = e.value.lower()
            if "ll" in v:
                return "unsigned long long" if "u" in v else "long long"
            if "l" in v:
                return "unsigned long" if "u" in v else "long"
            return "unsigned int" if "u" in v else "int"
        if e.type in ("double", "float"):
            return "float" if e.value.lower().endswith("f") else "double"
        return None
    if isinstance(e, c_ast.ID):
        t = types.get(e.name)
        return t[0] if t and t[1] == 0 else None
    if isinstance(e, c_ast.ArrayRef):
        depth = 0
        node = e
        while isinstance(node, c_ast.ArrayRef):
            node, depth = node.name, depth + 1
        if not isinstance(node, c_ast.ID):
            return None
        t = types.get(node.name)
        return t[0] if t and t[1] == depth else None
    if isinstance(e, c_ast.BinaryOp):
        if e.op in ("<", ">", "<=", ">=", "==", "!=", "&&", "||"):
            return "int"
        a, b = _type_of(e.left, types), _type_of(e.right, types)
        if e.op in ("<<", ">>"):
            return a
        return _arith(a, b)
    if isinstance(e, c_ast.UnaryOp):
        if e.op == "!":
            return "int"
        if e.op in ("-", "+", "~"):
            return _type_of(e.expr, types)
        return None
    if isinstance(e, c_ast.Cast):
        t = e.to_type.type
        if isinstance(t, c_ast.TypeDecl) and isinstance(t.type, c_ast.IdentifierType):
            return _norm_type(t.type.names)
        return None
    if isinstance(e, c_ast.FuncCall) and isinstance(e.name, c_ast.ID) and e.name.name in _PURE:
        name = e.name.name
        if name in ("abs",):
            return "int"
        if name in ("labs", "llabs"):
            return "long" if name == "labs" else "long long"
        return "float" if name.endswith("f") and name[:-1] in _PURE else "double"
    if isinstance(e, c_ast.TernaryOp):
        return _arith(_type_of(e.iftrue, types), _type_of(e.iffalse, types))
    return None


# --- polynomial normal form of index expressions ----------------------------------------------


def _poly(e: c_ast.Node) -> dict[tuple[str, ...], int] | None:
    """`e` as a polynomial over names with integer coefficients ({sorted names: coeff}), or
    None when it is not one (a division, a call, a memory read...)."""
    if isinstance(e, c_ast.Constant) and e.type == "int":
        try:
            v = int(e.value.rstrip("uUlL"), 0)
        except ValueError:
            return None
        return {(): v} if v else {}
    if isinstance(e, c_ast.ID):
        return {(e.name,): 1}
    if isinstance(e, c_ast.UnaryOp) and e.op in ("-", "+"):
        p = _poly(e.expr)
        if p is None:
            return None
        return {k: -v for k, v in p.items()} if e.op == "-" else p
    if isinstance(e, c_ast.Cast):
        return _poly(e.expr)
    if isinstance(e, c_ast.BinaryOp) and e.op in ("+", "-", "*"):
        a, b = _poly(e.left), _poly(e.right)
        if a is None or b is None:
            return None
        out: dict[tuple[str, ...], int] = {}
        if e.op == "*":
            for ka, va in a.items():
                for kb, vb in b.items():
                    k = tuple(sorted(ka + kb))
                    out[k] = out.get(k, 0) + va * vb
        else:
            sign = 1 if e.op == "+" else -1
            out = dict(a)
            for k, v in b.items():
                out[k] = out.get(k, 0) + sign * v
        return {k: v for k, v in out.items() if v}
    return None


def _same_index(a: c_ast.Node, b: c_ast.Node) -> bool:
    if _gen(a) == _gen(b):
        return True
    pa, pb = _poly(a), _poly(b)
    return pa is not None and pa == pb


def _refs(node: c_ast.Node | None, array: str) -> list[c_ast.ArrayRef]:
    """Outermost references ``array[...]`` in `node` (a 2-D ``a[i][j]`` counts once)."""
    out = []
    for n, p in _preorder(node) if node is not None else []:
        outer = not (isinstance(p, c_ast.ArrayRef) and p.name is n)
        if isinstance(n, c_ast.ArrayRef) and _base_name(n) == array and outer:
            out.append(n)
    return out


def _subscripts(ref: c_ast.ArrayRef) -> list[c_ast.Node]:
    subs = []
    while isinstance(ref, c_ast.ArrayRef):
        subs.append(ref.subscript)
        ref = ref.name
    return subs[::-1]


def _same_ref(a: c_ast.ArrayRef, b: c_ast.ArrayRef) -> bool:
    sa, sb = _subscripts(a), _subscripts(b)
    return len(sa) == len(sb) and all(_same_index(x, y) for x, y in zip(sa, sb, strict=True))


# --- canonical loops ----------------------------------------------------------------------------


@dataclass
class _Loop:
    var: str
    start: c_ast.Node
    end: c_ast.Node
    op: str  # "<" or "<="
    ctype: str | None  # the declared type when the loop declares its variable
    decl: c_ast.Decl | None


def _loop(node: c_ast.Node) -> _Loop | None:
    """The shape of a canonical counted loop, or None."""
    if not isinstance(node, c_ast.For) or node.init is None:
        return None
    decl = None
    if isinstance(node.init, c_ast.DeclList) and len(node.init.decls) == 1:
        decl = node.init.decls[0]
        t = decl.type
        if not isinstance(t, c_ast.TypeDecl) or not isinstance(t.type, c_ast.IdentifierType):
            return None
        var, start, ctype = decl.name, decl.init, " ".join(t.type.names)
    elif (
        isinstance(node.init, c_ast.Assignment)
        and node.init.op == "="
        and isinstance(node.init.lvalue, c_ast.ID)
    ):
        var, start, ctype = node.init.lvalue.name, node.init.rvalue, None
    else:
        return None
    if start is None or not _simple_expr(start):
        return None
    c = node.cond
    if not (
        isinstance(c, c_ast.BinaryOp)
        and c.op in ("<", "<=")
        and isinstance(c.left, c_ast.ID)
        and c.left.name == var
        and _simple_expr(c.right)
    ):
        return None
    n = node.next
    step_ok = (
        isinstance(n, c_ast.UnaryOp)
        and n.op in ("++", "p++")
        and isinstance(n.expr, c_ast.ID)
        and n.expr.name == var
    ) or (
        isinstance(n, c_ast.Assignment)
        and n.op == "+="
        and isinstance(n.lvalue, c_ast.ID)
        and n.lvalue.name == var
        and isinstance(n.rvalue, c_ast.Constant)
        and n.rvalue.value == "1"
    )
    if not step_ok:
        return None
    assigned = _assigned_scalars(node.stmt)
    if var in assigned or _ids(c.right) & assigned:
        return None
    return _Loop(var, start, c.right, c.op, ctype, decl)


def _fresh(func: c_ast.FuncDef, base: str, taken: set[str] | None = None) -> str:
    used = {n.name for n in _walk(func) if isinstance(n, c_ast.ID | c_ast.Decl) and n.name}
    used |= taken or set()
    name, k = base, 0
    while name in used:
        k += 1
        name = f"{base}{k}"
    if taken is not None:
        taken.add(name)
    return name


def _var_type(lp: _Loop, types: dict[str, tuple[str, int] | None]) -> str | None:
    if lp.ctype:
        return lp.ctype
    t = types.get(lp.var)
    return t[0] if t and t[1] == 0 else None


# --- the transforms ---------------------------------------------------------------------------


@dataclass
class _Site:
    unit: _Unit
    func: c_ast.FuncDef
    loop: c_ast.For
    parent: c_ast.Node
    info: _Loop


def _sites(unit: _Unit, func: c_ast.FuncDef) -> list[_Site]:
    out = []
    for n, p in _preorder(func.body):
        if isinstance(n, c_ast.For) and p is not None:
            info = _loop(n)
            if info is not None:
                out.append(_Site(unit, func, n, p, info))
    return out


def _put(site: _Site, new: c_ast.Node) -> None:
    """Replace the loop at `site` with `new`; a loop pragma just before the loop moves onto
    the first loop inside `new` (a pragma must precede a loop)."""
    parent = site.parent
    pragma = None
    if isinstance(parent, c_ast.Compound) and not isinstance(new, c_ast.For):
        items = parent.block_items
        i = next(k for k, x in enumerate(items) if x is site.loop)
        if i > 0 and isinstance(items[i - 1], c_ast.Pragma):
            pragma = items.pop(i - 1)
    _replace(parent, site.loop, new)
    if pragma is None:
        return
    for n, p in _preorder(new):
        if isinstance(n, c_ast.For) and p is not None:
            if pragma.string.startswith("omp") and _loop(n) is None:
                raise _Skip("an OpenMP loop must stay a canonical loop")
            if isinstance(p, c_ast.Compound):
                p.block_items.insert(p.block_items.index(n), pragma)
            else:
                _replace(p, n, c_ast.Compound([pragma, n]))
            return


def _guard(site: _Site, stmts: list[c_ast.Node]) -> c_ast.Node:
    """``if (start < end) { stmts }``: what is hoisted before the loop runs only when the loop
    runs at least once."""
    lp = site.info
    cond = c_ast.BinaryOp(lp.op, copy.deepcopy(lp.start), copy.deepcopy(lp.end))
    return c_ast.If(cond, c_ast.Compound(stmts), None)


def _body_copy(stmt: c_ast.Node, var: str, k: int, renames: dict[str, str]) -> list[c_ast.Node]:
    def make() -> c_ast.Node:
        return (
            c_ast.BinaryOp("+", c_ast.ID(var), c_ast.Constant("int", str(k)))
            if k
            else (c_ast.ID(var))
        )

    body = _subst(stmt, var, make) if k else copy.deepcopy(stmt)
    for old, new in renames.items():
        body = _subst(body, old, lambda new=new: c_ast.ID(new))
    items = _items(body)
    if any(isinstance(i, c_ast.Decl) for i in items):
        return [c_ast.Compound(items)]
    return items


def _unrolled(
    site: _Site, factor: int, renames_of: Callable[[int], dict[str, str]], pre: list[c_ast.Node]
) -> c_ast.Node:
    lp = site.info
    loop = site.loop
    head = [copy.deepcopy(lp.decl if lp.decl is not None else loop.init)]
    cond_main = c_ast.BinaryOp(
        lp.op,
        c_ast.BinaryOp("+", c_ast.ID(lp.var), c_ast.Constant("int", str(factor - 1))),
        copy.deepcopy(lp.end),
    )
    step = c_ast.Assignment("+=", c_ast.ID(lp.var), c_ast.Constant("int", str(factor)))
    body: list[c_ast.Node] = []
    for k in range(factor):
        body += _body_copy(loop.stmt, lp.var, k, renames_of(k))
    main = c_ast.For(None, cond_main, step, c_ast.Compound(body))
    rest = c_ast.For(
        None,
        copy.deepcopy(loop.cond),
        c_ast.UnaryOp("p++", c_ast.ID(lp.var)),
        c_ast.Compound(_body_copy(loop.stmt, lp.var, 0, renames_of(0))),
    )
    return c_ast.Compound([*pre, *head, main, rest])


def _innermost_ok(site: _Site) -> None:
    if _has_loop(site.loop.stmt) or _impure(site.loop.stmt):
        raise _Skip("not an innermost loop with a plain body")


def t_unroll(site: _Site, factor: int) -> tuple[str, str]:
    _innermost_ok(site)
    new = _unrolled(site, factor, lambda k: {}, [])
    _put(site, new)
    v = site.info.var
    return f"unroll({v}, {factor})", f"unroll the {v} loop by {factor} with a remainder loop"


def _reduction_scalar(site: _Site, types: dict[str, tuple[str, int] | None]) -> tuple[str, str]:
    """The scalar ``s`` of a loop whose body accumulates ``s += e`` once (at its top level) and
    uses ``s`` nowhere else; and its type."""
    items = _items(site.loop.stmt)
    accs = [
        i
        for i in items
        if isinstance(i, c_ast.Assignment) and i.op == "+=" and isinstance(i.lvalue, c_ast.ID)
    ]
    for a in accs:
        s = a.lvalue.name
        t = types.get(s)
        if not t or t[1] != 0 or s == site.info.var:
            continue
        uses = sum(1 for n in _walk(site.loop.stmt) if isinstance(n, c_ast.ID) and n.name == s)
        if uses == 1 and s not in _ids(a.rvalue):
            return s, t[0]
    raise _Skip("no scalar reduction")


def t_accumulators(site: _Site, factor: int, types: dict) -> tuple[str, str]:
    _innermost_ok(site)
    s, ctype = _reduction_scalar(site, types)
    taken: set[str] = set()
    names = [_fresh(site.func, f"{s}_acc", taken) for _ in range(factor)]
    pre = site.unit.snippet(" ".join(f"{ctype} {n} = 0;" for n in names))
    new = _unrolled(site, factor, lambda k: {s: names[k]}, pre)
    # the rest loop adds into the first partial sum; then the partial sums, pairwise, into s
    terms = [c_ast.ID(n) for n in names]
    while len(terms) > 1:
        terms = [
            c_ast.BinaryOp("+", terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i]
            for i in range(0, len(terms), 2)
        ]
    new.block_items.append(c_ast.Assignment("+=", c_ast.ID(s), terms[0]))
    _put(site, new)
    v = site.info.var
    return (
        f"accumulators({s}, {factor})",
        f"unroll the {v} loop by {factor} with {factor} partial sums of {s}",
    )


def t_pragma(site: _Site, text: str, types: dict | None = None) -> tuple[str, str]:
    _innermost_ok(site)
    if text == "omp simd" and types is not None:
        from airda.codeopt.evolve._rewrites_c_vec import simd_safe

        # omp simd promises independent iterations: each written array element its own,
        # no shared scalar but a sum (without the clause lanes would share the accumulator)
        if not simd_safe(site):
            raise _Skip("iterations may touch the same element")
        own = {d.name for d in _walk(site.loop.stmt) if isinstance(d, c_ast.Decl)}
        try:
            s = _reduction_scalar(site, types)[0]
            text += f" reduction(+:{s})"
        except _Skip:
            s = None
        if _assigned_scalars(site.loop.stmt) - own - {s}:
            raise _Skip("a shared scalar other than a sum")
    _insert_pragma(site, text)
    return f"pragma({text})", f"#pragma {text} on the {site.info.var} loop"


def _insert_pragma(site: _Site, text: str) -> None:
    parent = site.parent
    if isinstance(parent, c_ast.Compound):
        items = parent.block_items
        i = next(k for k, x in enumerate(items) if x is site.loop)
        if i > 0 and isinstance(items[i - 1], c_ast.Pragma):
            raise _Skip("already has a pragma")
        items.insert(i, c_ast.Pragma(text))
    else:
        _replace(parent, site.loop, c_ast.Compound([c_ast.Pragma(text), site.loop]))


def _outermost(site: _Site) -> bool:
    return not any(
        n is site.loop
        for f in _walk(site.func.body)
        if isinstance(f, c_ast.For) and f is not site.loop
        for n in _walk(f.stmt)
    )


def _sum_updates(body: c_ast.Node, pick: Callable[[c_ast.Node], bool]) -> int | None:
    """How many ``x += e`` / ``x++`` updates of the targets `pick` accepts `body` holds, when
    those are the only references to them (and no ``e`` reads them); else None."""
    count = 0
    for n in _walk(body):
        target = None
        if isinstance(n, c_ast.Assignment) and pick(n.lvalue):
            if n.op != "+=" or any(pick(m) for m in _walk(n.rvalue)):
                return None
            target = n.lvalue
        elif isinstance(n, c_ast.UnaryOp) and n.op in ("++", "p++") and pick(n.expr):
            target = n.expr
        if target is not None:
            count += 1
            # an array's subscript may not refer to the array itself
            if isinstance(target, c_ast.ArrayRef) and any(pick(m) for m in _walk(target.subscript)):
                return None
    return count


def _extent(site: _Site, arr: str) -> c_ast.Node | None:
    """``N`` when the function, outside the loop at `site`, writes ``arr[v]`` in a loop
    ``for (v = 0; v < N; v++)`` with ``N`` not assigned anywhere: the length an array
    reduction clause names."""
    inside = {id(n) for n in _walk(site.loop)}
    assigned = _assigned_scalars(site.func.body)
    for n in _walk(site.func.body):
        if not isinstance(n, c_ast.For) or id(n) in inside:
            continue
        lp = _loop(n)
        if (
            lp is None
            or lp.op != "<"
            or not (isinstance(lp.start, c_ast.Constant) and lp.start.value == "0")
            or _ids(lp.end) & assigned
        ):
            continue
        for lv in _lvalues(n.stmt):
            if (
                isinstance(lv, c_ast.ArrayRef)
                and isinstance(lv.name, c_ast.ID)
                and lv.name.name == arr
                and isinstance(lv.subscript, c_ast.ID)
                and lv.subscript.name == lp.var
            ):
                return lp.end
    return None


def t_parallel(site: _Site, types: dict) -> tuple[str, str]:
    """``#pragma omp parallel for`` on an outermost loop whose iterations are independent:
    every array it writes is referenced through one subscript that tells the iterations apart
    (as for interchange, pairing the loop with each loop inside), every scalar it assigns is
    its own, except sums ``s += e`` (a ``reduction(+:s)`` clause) and arrays only ever
    incremented (``reduction(+:X[:N])`` with ``N`` from the loop that fills ``X``)."""
    if not _outermost(site):
        raise _Skip("not an outermost loop")
    body, a = site.loop.stmt, site.info.var
    if _impure(body):
        raise _Skip("calls")
    parent = site.parent
    if isinstance(parent, c_ast.Compound):
        i = next(k for k, x in enumerate(parent.block_items) if x is site.loop)
        if i > 0 and isinstance(parent.block_items[i - 1], c_ast.Pragma):
            raise _Skip("already has a pragma")
    written = _written_arrays(body)
    if written is None:
        raise _Skip("writes through a pointer")
    declared = {n.name for n in _walk(body) if isinstance(n, c_ast.Decl)}
    if a in _assigned_scalars(body):
        raise _Skip("the loop variable is assigned")
    clauses = []
    for s in sorted(_assigned_scalars(body) - declared - {a}):
        t = types.get(s)
        if not t or t[1] != 0:
            raise _Skip(f"shared scalar {s}")
        if not _sum_updates(body, lambda m, s=s: isinstance(m, c_ast.ID) and m.name == s):
            raise _Skip(f"shared scalar {s}")
        clauses.append(s)
    inner = [lp.var for n in _walk(body) if (lp := _loop(n)) is not None]
    for arr in sorted(written):
        refs = _refs(body, arr)
        polys = [_poly(sub) for sub in _subscripts(refs[0])]
        if all(_same_ref(refs[0], r) for r in refs[1:]) and all(
            p is not None and any(a in k for k in p) and all(_linearized(p, a, b) for b in inner)
            for p in polys
        ):
            continue
        t = types.get(arr)
        n_updates = _sum_updates(
            body, lambda m, arr=arr: isinstance(m, c_ast.ArrayRef) and _base_name(m) == arr
        )
        extent = _extent(site, arr)
        if not n_updates or n_updates != len(refs) or extent is None or not t or t[1] != 1:
            raise _Skip(f"iterations may write the same element of {arr}")
        clauses.append(f"{arr}[:{_gen(extent)}]")
    text = "omp parallel for"
    if clauses:
        text += f" reduction(+:{', '.join(clauses)})"
    _insert_pragma(site, text)
    return f"parallel({a})", f"#pragma {text}: the {a} loop's iterations on the spec's threads"


def _linearized(poly: dict[tuple[str, ...], int], a: str, b: str) -> bool:
    """An index polynomial in two loop variables that cannot map two different (a, b) to one
    element: it uses at most one of them, or one with a symbolic (row-length) coefficient."""
    uses_a = [k for k in poly if a in k]
    uses_b = [k for k in poly if b in k]
    if any(k.count(a) > 1 or k.count(b) > 1 or (a in k and b in k) for k in poly):
        return False
    if not uses_a or not uses_b:
        return True
    sym_a = any(len(k) > 1 for k in uses_a)
    sym_b = any(len(k) > 1 for k in uses_b)
    return sym_a != sym_b


def _permutable(body: c_ast.Node, a: str, b: str) -> bool:
    """May the iterations of loops `a` and `b` around `body` run in another order? Every array
    the body writes is referenced with one subscript only (so no iteration reads what another
    wrote, except the same element), that subscript tells (a, b) pairs apart, and every scalar
    the body assigns is its own (declared inside)."""
    if _impure(body):
        return False
    written = _written_arrays(body)
    if written is None:
        return False
    declared = {n.name for n in _walk(body) if isinstance(n, c_ast.Decl)}
    if _assigned_scalars(body) - declared - {a, b}:
        return False
    if {a, b} & _assigned_scalars(body):
        return False
    for arr in written:
        refs = _refs(body, arr)
        if not all(_same_ref(refs[0], r) for r in refs[1:]):
            return False
        for sub in _subscripts(refs[0]):
            p = _poly(sub)
            if p is None or not _linearized(p, a, b):
                return False
    return True


def _perfect_pair(site: _Site) -> tuple[c_ast.For, _Loop]:
    inner = _single(site.loop.stmt)
    lp_in = _loop(inner) if inner is not None else None
    if lp_in is None:
        raise _Skip("not a perfect nest")
    o = site.info
    if o.var in _ids(lp_in.start) | _ids(lp_in.end) or lp_in.var in _ids(o.end):
        raise _Skip("not rectangular")
    return inner, lp_in


def _sink_accumulator(site: _Site) -> bool:
    """Turn ``{ T s = z; for (k..) s += e; X[f] = s; }`` in the body of the loop at `site` into
    ``for (..) X[f] = z; for (..) for (k..) X[f] += e;``; True when it did."""
    items = _items(site.loop.stmt)
    if len(items) != 3:
        return False
    d, inner, store = items
    if not (
        isinstance(d, c_ast.Decl)
        and d.init is not None
        and _simple_expr(d.init)
        and _loop(inner) is not None
        and isinstance(store, c_ast.Assignment)
        and store.op == "="
        and isinstance(store.lvalue, c_ast.ArrayRef)
        and isinstance(store.rvalue, c_ast.ID)
        and store.rvalue.name == d.name
    ):
        return False
    s = d.name
    acc = _single(inner.stmt)
    if not (
        isinstance(acc, c_ast.Assignment)
        and acc.op == "+="
        and isinstance(acc.lvalue, c_ast.ID)
        and acc.lvalue.name == s
        and s not in _ids(acc.rvalue)
    ):
        return False
    target = store.lvalue
    arr = _base_name(target)
    k = _loop(inner).var
    if arr is None or _refs(acc.rvalue, arr) or k in _ids(target) or _impure(acc.rvalue):
        return False
    if site.info.var not in _ids(target):
        return False
    if any(
        n.name == s
        for n in _walk(c_ast.Compound([inner.init, inner.cond]))
        if isinstance(n, c_ast.ID)
    ):
        return False
    first = c_ast.For(
        copy.deepcopy(site.loop.init),
        copy.deepcopy(site.loop.cond),
        copy.deepcopy(site.loop.next),
        c_ast.Assignment("=", copy.deepcopy(target), copy.deepcopy(d.init)),
    )
    new_inner = c_ast.For(
        inner.init,
        inner.cond,
        inner.next,
        c_ast.Assignment("+=", copy.deepcopy(target), acc.rvalue),
    )
    site.loop.stmt = new_inner
    _put(site, c_ast.Compound([first, site.loop]))
    site.parent = next(p for n, p in _preorder(site.func.body) if n is site.loop and p is not None)
    return True


def t_interchange(site: _Site) -> tuple[str, str]:
    sunk = _sink_accumulator(site)
    inner, lp_in = _perfect_pair(site)
    o = site.info
    if not _permutable(inner.stmt, o.var, lp_in.var):
        raise _Skip("a dependence may forbid the interchange")
    outer = site.loop
    new_outer = c_ast.For(inner.init, inner.cond, inner.next, None)
    new_inner = c_ast.For(outer.init, outer.cond, outer.next, inner.stmt)
    new_outer.stmt = new_inner
    _replace(site.parent, outer, new_outer)
    how = " (the scalar accumulator first stored in place)" if sunk else ""
    return (
        f"interchange({o.var}, {lp_in.var})",
        f"interchange the {o.var} and {lp_in.var} loops{how}",
    )


def t_tile(site: _Site, size: int, types: dict) -> tuple[str, str]:
    inner, lp_in = _perfect_pair(site)
    o = site.info
    if o.op != "<" or lp_in.op != "<" or o.decl is None or lp_in.decl is None:
        raise _Skip("tiling wants `<` loops that declare their variables")
    if not _permutable(inner.stmt, o.var, lp_in.var):
        raise _Skip("a dependence may forbid tiling")
    taken: set[str] = set()
    ot, it = _fresh(site.func, f"{o.var}_t", taken), _fresh(site.func, f"{lp_in.var}_t", taken)
    a, b = o.var, lp_in.var
    # every bound in parentheses: a tile's bound may be a ?: (tiling a tiled nest)
    sa, ea, sb, eb = (f"({_gen(x)})" for x in (o.start, o.end, lp_in.start, lp_in.end))
    text = (
        f"for ({o.ctype} {ot} = {sa}; {ot} < {ea}; {ot} += {size})\n"
        f" for ({lp_in.ctype} {it} = {sb}; {it} < {eb}; {it} += {size})\n"
        f"  for ({o.ctype} {a} = {ot}; {a} < (({ot} + {size} < {ea}) ? ({ot} + {size}) : ({ea})); {a}++)\n"
        f"   for ({lp_in.ctype} {b} = {it}; {b} < (({it} + {size} < {eb}) ? ({it} + {size}) : ({eb})); {b}++)\n"
        "    airda_body_;"
    )
    new = site.unit.snippet(text)[0]
    innermost = new.stmt.stmt.stmt
    innermost.stmt = inner.stmt
    _put(site, new)
    return f"tile({a}, {b}, {size})", f"tile the {a}-{b} nest in {size}x{size} blocks"


def _plain(e: c_ast.Node) -> bool:
    """Free of side effects (it may be evaluated twice): names, constants, element reads,
    arithmetic, casts, pure calls."""
    for n in _walk(e):
        if isinstance(n, c_ast.FuncCall):
            if not _is_pure_call(n):
                return False
        elif isinstance(n, c_ast.UnaryOp):
            if n.op not in ("-", "+", "!", "~"):
                return False
        elif not isinstance(
            n,
            c_ast.ID
            | c_ast.Constant
            | c_ast.ArrayRef
            | c_ast.BinaryOp
            | c_ast.Cast
            | c_ast.ExprList
            | c_ast.Typename
            | c_ast.TypeDecl
            | c_ast.IdentifierType,
        ):
            return False
    return True


def t_inline_minmax(unit: _Unit, func: c_ast.FuncDef) -> tuple[str, str]:
    """``fmax(a, b)`` -> ``(a > b || b != b) ? a : b`` (``fmin`` alike): at -O2 without
    -ffinite-math-only, GCC calls libm for them. The same value for every input, NaNs
    included (the C standard lets fmax(+0, -0) be either zero)."""
    done = set()
    for n, p in list(_preorder(func.body)):
        if not (
            isinstance(n, c_ast.FuncCall)
            and isinstance(n.name, c_ast.ID)
            and n.name.name in ("fmax", "fmin", "fmaxf", "fminf")
            and p is not None
            and n.args is not None
            and len(n.args.exprs) == 2
            and all(_plain(x) for x in n.args.exprs)
        ):
            continue
        a, b = n.args.exprs
        op = ">" if n.name.name.startswith("fmax") else "<"
        cond = c_ast.BinaryOp(
            "||",
            c_ast.BinaryOp(op, a, b),
            c_ast.BinaryOp("!=", copy.deepcopy(b), copy.deepcopy(b)),
        )
        _replace(p, n, c_ast.TernaryOp(cond, copy.deepcopy(a), copy.deepcopy(b)))
        done.add(n.name.name)
    if not done:
        raise _Skip("no fmax/fmin")
    names = "/".join(sorted(done))
    return f"inline({names})", f"{names} as a compare and select (NaN rules kept)"


def t_restrict(unit: _Unit, func: c_ast.FuncDef) -> tuple[str, str]:
    params = func.decl.type.args.params if func.decl.type.args else []
    ptrs = [p for p in params if isinstance(p, c_ast.Decl) and isinstance(p.type, c_ast.PtrDecl)]
    todo = [p for p in ptrs if "restrict" not in p.type.quals]
    if len(ptrs) < 2 or not todo:
        raise _Skip("no pointer parameters to mark")
    for p in todo:
        p.type.quals = [*p.type.quals, "restrict"]
    return "restrict", "mark the pointer parameters restrict (the arrays do not overlap)"


def _hoistable(
    e: c_ast.Node, blocked: set[str], written: set[str] | None, pure_only: bool = True
) -> bool:
    for n in _walk(e):
        if isinstance(n, c_ast.ID):
            if n.name in blocked:
                return False
        elif isinstance(n, c_ast.ArrayRef):
            if written is None or _base_name(n) in written or _base_name(n) is None:
                return False
        elif isinstance(n, c_ast.FuncCall):
            if not _is_pure_call(n):
                return False
        elif isinstance(n, c_ast.UnaryOp):
            if n.op not in ("-", "+", "!", "~"):
                return False
        elif not isinstance(
            n,
            c_ast.BinaryOp
            | c_ast.Constant
            | c_ast.Cast
            | c_ast.ExprList
            | c_ast.Typename
            | c_ast.TypeDecl
            | c_ast.IdentifierType,
        ):
            return False
    return True


def _invariants(site: _Site) -> list[c_ast.Node]:
    """Maximal loop-invariant expressions worth a name (arithmetic, loads, pure calls) in the
    loop's body, outside lvalues and conditional operands."""
    body = site.loop.stmt
    blocked = _assigned_scalars(body) | {site.info.var}
    written = _written_arrays(body)
    lv_ids = {id(lv) for lv in _lvalues(body)}
    found: list[c_ast.Node] = []

    def visit(n: c_ast.Node, in_lvalue: bool) -> None:
        if not in_lvalue and isinstance(n, c_ast.BinaryOp | c_ast.ArrayRef | c_ast.FuncCall):
            if isinstance(n, c_ast.BinaryOp) and n.op in ("&&", "||"):
                visit(n.left, False)
                return
            if _hoistable(n, blocked, written):
                found.append(n)
                return
        if isinstance(n, c_ast.TernaryOp):
            visit(n.cond, False)
            return
        if isinstance(n, c_ast.UnaryOp) and n.op in ("&", "sizeof"):
            return
        for _name, c in n.children():
            if id(c) in lv_ids:
                # the target itself is not a value; its subscripts are
                if isinstance(c, c_ast.ArrayRef):
                    visit(c.subscript, False)
                    inner = c.name
                    while isinstance(inner, c_ast.ArrayRef):
                        visit(inner.subscript, False)
                        inner = inner.name
                continue
            visit(c, False)

    visit(body, False)
    return found


def t_hoist(site: _Site, types: dict) -> tuple[str, str]:
    exprs = _invariants(site)
    groups: dict[str, list[c_ast.Node]] = {}
    for e in exprs:
        groups.setdefault(_gen(e), []).append(e)
    decls, shown = [], []
    taken: set[str] = set()
    risky = False
    for text, nodes in groups.items():
        t = _type_of(nodes[0], types)
        if t is None:
            continue
        name = _fresh(site.func, "hoisted", taken)
        decls.append(f"const {t} {name} = {text};")
        shown.append(text)
        risky |= any(
            isinstance(n, c_ast.ArrayRef | c_ast.FuncCall)
            or (isinstance(n, c_ast.BinaryOp) and n.op in ("/", "%"))
            for e in nodes
            for n in _walk(e)
        )
        for e in nodes:
            parent = next(p for n, p in _preorder(site.loop.stmt) if n is e)
            _replace(parent, e, c_ast.ID(name))
    if not decls:
        raise _Skip("nothing invariant to hoist")
    pre = site.unit.snippet(" ".join(decls))
    new = _guard(site, [*pre, site.loop]) if risky else c_ast.Compound([*pre, site.loop])
    _put(site, new)
    v = site.info.var
    return f"hoist({v}: {', '.join(shown)})", f"hoist {', '.join(shown)} out of the {v} loop"


def t_reciprocal(site: _Site, types: dict) -> tuple[str, str]:
    """``e / d`` with ``d`` invariant in the loop and floating -> ``e * r``, ``r = 1 / d``."""
    body = site.loop.stmt
    blocked = _assigned_scalars(body) | {site.info.var}
    written = _written_arrays(body)
    divs = [
        (n, p)
        for n, p in _preorder(body)
        if isinstance(n, c_ast.BinaryOp | c_ast.Assignment) and getattr(n, "op", "") in ("/", "/=")
    ]
    for n, parent in divs:
        d = n.right if isinstance(n, c_ast.BinaryOp) else n.rvalue
        top = n.left if isinstance(n, c_ast.BinaryOp) else n.lvalue
        t = _arith(_type_of(d, types), _type_of(top, types))
        if t not in ("float", "double", "long double") or not _hoistable(d, blocked, written):
            continue
        name = _fresh(site.func, "inv")
        one = "1.0f" if t == "float" else "1.0"
        dt = _gen(d)
        pre = site.unit.snippet(f"const {t} {name} = {one} / ({dt});")
        if isinstance(n, c_ast.BinaryOp):
            _replace(parent, n, c_ast.BinaryOp("*", n.left, c_ast.ID(name)))
        else:
            n.op, n.rvalue = "*=", c_ast.ID(name)
        _put(site, _guard(site, [*pre, site.loop]))
        v = site.info.var
        return f"reciprocal({v}: {dt})", f"divide by {dt} as a multiply by its reciprocal"
    raise _Skip("no invariant floating division")


def t_scalarize(site: _Site, types: dict) -> tuple[str, str]:
    """``X[f] op= ...`` in a loop with ``f`` invariant -> a local accumulator."""
    body = site.loop.stmt
    written = _written_arrays(body)
    if not written or _impure(body):
        raise _Skip("no array written")
    blocked = _assigned_scalars(body) | {site.info.var}
    for arr in sorted(written):
        refs = _refs(body, arr)
        if not all(_same_ref(refs[0], r) for r in refs[1:]):
            continue
        if _ids(refs[0]) & blocked or any(
            isinstance(n, c_ast.ArrayRef) and _base_name(n) != arr for n in _walk(refs[0])
        ):
            continue
        t = types.get(arr)
        if not t or t[1] != len(_subscripts(refs[0])):
            continue
        name = _fresh(site.func, f"{arr}_acc")
        text = _gen(refs[0])
        for r in refs:
            parent = next(p for n, p in _preorder(site.loop.stmt) if n is r)
            _replace(parent, r, c_ast.ID(name))
        pre = site.unit.snippet(f"{t[0]} {name} = {text};")
        post = site.unit.snippet(f"{text} = {name};")
        _put(site, _guard(site, [*pre, site.loop, *post]))
        v = site.info.var
        return (
            f"scalarize({v}: {text})",
            f"keep {text} in a local accumulator across the {v} loop",
        )
    raise _Skip("no invariant array element")


def t_carry(site: _Site, types: dict) -> tuple[str, str]:
    """``X[f(i)] = e(X[f(i-1)])``: carry the previous element in a scalar (predictive
    commoning), instead of reading back what the last iteration stored."""
    lp = site.info
    items = _items(site.loop.stmt)
    if _impure(site.loop.stmt) or _has_loop(site.loop.stmt):
        raise _Skip("plain innermost loops only")
    for idx, st in enumerate(items):
        if not (
            isinstance(st, c_ast.Assignment)
            and st.op == "="
            and isinstance(st.lvalue, c_ast.ArrayRef)
        ):
            continue
        arr = _base_name(st.lvalue)
        t = types.get(arr) if arr else None
        if not t or t[1] != len(_subscripts(st.lvalue)):
            continue
        prev = _subst(
            st.lvalue,
            lp.var,
            lambda: c_ast.BinaryOp("-", c_ast.ID(lp.var), c_ast.Constant("int", "1")),
        )
        refs = _refs(site.loop.stmt, arr)
        reads = [r for r in refs if r is not st.lvalue]
        if not reads or not all(_same_ref(r, prev) for r in reads):
            continue
        writes = [lv for lv in _lvalues(site.loop.stmt) if lv is not st.lvalue]
        if any(isinstance(w, c_ast.ArrayRef) and _base_name(w) == arr for w in writes):
            continue
        later = c_ast.Compound(items[idx + 1 :])
        if _refs(later, arr):
            continue
        name = _fresh(site.func, f"{arr}_prev")
        for r in reads:
            parent = next(p for n, p in _preorder(site.loop.stmt) if n is r)
            _replace(parent, r, c_ast.ID(name))
        first = _subst(
            st.lvalue,
            lp.var,
            lambda: c_ast.BinaryOp("-", copy.deepcopy(lp.start), c_ast.Constant("int", "1")),
        )
        pre = site.unit.snippet(f"{t[0]} {name} = {_gen(first)};")
        new_items = [
            *items[:idx],
            c_ast.Assignment("=", c_ast.ID(name), st.rvalue),
            c_ast.Assignment("=", st.lvalue, c_ast.ID(name)),
            *items[idx + 1 :],
        ]
        site.loop.stmt = c_ast.Compound(new_items)
        _put(site, _guard(site, [*pre, site.loop]))
        return (
            f"carry({arr}, {lp.var})",
            f"carry {arr}'s previous element in a register across the {lp.var} loop",
        )
    raise _Skip("no loop-carried array element")


# --- enumeration ------------------------------------------------------------------------------

_UNROLL = (2, 4, 8)
_TILES = (16, 32, 64)
_PRAGMAS = ("GCC ivdep", "omp simd", "GCC unroll 4")


def _loop_transforms(types: dict) -> list[tuple[str, Callable[[_Site], tuple[str, str]]]]:
    out: list[tuple[str, Callable[[_Site], tuple[str, str]]]] = []
    out += [("unroll", lambda s, f=f: t_unroll(s, f)) for f in _UNROLL]
    out += [("accumulators", lambda s, f=f: t_accumulators(s, f, types)) for f in (2, 4, 8)]
    out += [("interchange", t_interchange)]
    out += [("tile", lambda s, b=b: t_tile(s, b, types)) for b in _TILES]
    out += [("hoist", lambda s: t_hoist(s, types))]
    out += [("reciprocal", lambda s: t_reciprocal(s, types))]
    out += [("scalarize", lambda s: t_scalarize(s, types))]
    out += [("carry", lambda s: t_carry(s, types))]
    out += [("pragma", lambda s, p=p: t_pragma(s, p, types)) for p in _PRAGMAS]
    from airda.codeopt.evolve import _rewrites_c_block, _rewrites_c_vec

    out += [("vexp", lambda s: _rewrites_c_vec.t_vexp(s, types))]
    out += [
        ("fission", lambda s, b=b: _rewrites_c_block.t_fission(s, types, b))
        for b in _rewrites_c_block.BLOCKS
    ]
    return out


def _entry(unit: _Unit, entry: str) -> int | None:
    for k, e in enumerate(unit.ast.ext):
        if isinstance(e, c_ast.FuncDef) and e.decl.name == entry:
            return k
    return None


def candidates(
    source: str, entry: str, cpp: bool = False, parallel: bool = False
) -> list[Candidate]:
    """Every rewrite that applies to the function `entry` of `source`, in a fixed order
    (with `parallel`, OpenMP ``parallel for`` too)."""
    base = parse(source, cpp)
    if base is None:
        return []
    k = _entry(base, entry)
    if k is None:
        return []
    token = _PURE_MACROS.set(_pure_macros(base.header))
    try:
        return _candidates(base, k, cpp, parallel)
    finally:
        _PURE_MACROS.reset(token)


def _candidates(base: _Unit, k: int, cpp: bool, parallel: bool) -> list[Candidate]:
    from airda.codeopt.evolve import _rewrites_c_vec

    out: list[Candidate] = []

    def attempt(kind: str, fn: Callable[[_Unit, c_ast.FuncDef], tuple[str, str]]) -> None:
        unit = copy.deepcopy(base)
        func = unit.ast.ext[k]
        try:
            name, desc = fn(unit, func)
            _rewrites_c_vec.sync(unit, func)
            text = unit.render()
        except _Skip:
            return
        except (RecursionError, AttributeError, TypeError, ValueError, IndexError, StopIteration):
            return
        if parse(text, cpp) is None:  # a rewrite must parse again (it will be rewritten)
            return
        out.append(Candidate(kind, name, text, desc))

    attempt("restrict", t_restrict)
    attempt("inline", t_inline_minmax)
    attempt("isa", _rewrites_c_vec.t_isa)
    n_sites = len(_sites(base, base.ast.ext[k]))
    types0 = _decl_types(base, base.ast.ext[k])
    for i in range(n_sites):
        for j, (kind, _) in enumerate(_loop_transforms(types0)):

            def fn(unit: _Unit, func: c_ast.FuncDef, i: int = i, j: int = j) -> tuple[str, str]:
                types = _decl_types(unit, func)
                site = _sites(unit, func)[i]
                return _loop_transforms(types)[j][1](site)

            attempt(kind, fn)
        if parallel:

            def par(unit: _Unit, func: c_ast.FuncDef, i: int = i) -> tuple[str, str]:
                return t_parallel(_sites(unit, func)[i], _decl_types(unit, func))

            attempt("parallel", par)
    return out
