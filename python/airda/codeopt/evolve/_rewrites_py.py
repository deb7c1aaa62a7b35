"""Deterministic rewrites of Python kernels on :mod:`ast`: NumPy vectorisation of simple loops
(element-wise assignments, sum / dot / max / min reductions, the triple loop of a matrix
multiply) and hoisting of loop-invariant expressions.

A loop is a candidate when it is ``for v in range(...)`` with a unit step, and its body uses
``v`` only as an index (``x[v]``, or ``x[r, v]`` / ``x[r][v]`` with ``v`` last). An array the
body writes must be read only at the element being written (no ``out[i - 1]``): then the
iterations are independent and the slice form computes the same values. ``math.f`` becomes
``np.f`` in a vectorised body. The rewritten source is :func:`ast.unparse`'s text (comments do
not survive); ``import numpy as np`` is added when missing.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from dataclasses import dataclass

from airda.codeopt.evolve._candidate import Candidate

__all__ = ["Candidate", "candidates"]


class _Skip(Exception):
    pass


# math.f / builtins -> the NumPy ufunc with the same meaning element-wise
_UFUNCS = {
    "exp": "exp",
    "expm1": "expm1",
    "log": "log",
    "log2": "log2",
    "log10": "log10",
    "log1p": "log1p",
    "sqrt": "sqrt",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "tanh": "tanh",
    "sinh": "sinh",
    "cosh": "cosh",
    "atan": "arctan",
    "asin": "arcsin",
    "acos": "arccos",
    "arctan": "arctan",
    "arcsin": "arcsin",
    "arccos": "arccos",
    "fabs": "abs",
    "abs": "abs",
    "floor": "floor",
    "ceil": "ceil",
    "maximum": "maximum",
    "minimum": "minimum",
    "hypot": "hypot",
    "atan2": "arctan2",
    "arctan2": "arctan2",
    "copysign": "copysign",
}
_BUILTIN = {"abs": "abs", "max": "maximum", "min": "minimum"}
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.FloorDiv, ast.Mod)


@dataclass
class _Range:
    var: str
    lo: ast.expr | None
    hi: ast.expr


def _range(node: ast.AST) -> _Range | None:
    if not (
        isinstance(node, ast.For)
        and isinstance(node.target, ast.Name)
        and not node.orelse
        and isinstance(node.iter, ast.Call)
        and isinstance(node.iter.func, ast.Name)
        and node.iter.func.id == "range"
        and not node.iter.keywords
        and 1 <= len(node.iter.args) <= 3
    ):
        return None
    args = node.iter.args
    if len(args) == 3 and not (isinstance(args[2], ast.Constant) and args[2].value == 1):
        return None
    if not all(_simple(a) for a in args):
        return None
    lo, hi = (None, args[0]) if len(args) == 1 else (args[0], args[1])
    return _Range(node.target.id, lo, hi)


def _simple(e: ast.AST) -> bool:
    """Names, constants, arithmetic and ``len(...)`` of a name: cheap and without effects."""
    for n in ast.walk(e):
        if isinstance(n, ast.Call):
            if not (
                isinstance(n.func, ast.Name)
                and n.func.id == "len"
                and len(n.args) == 1
                and isinstance(n.args[0], ast.Name)
            ):
                return False
        elif not isinstance(
            n,
            ast.Name
            | ast.Constant
            | ast.BinOp
            | ast.UnaryOp
            | ast.Load
            | ast.operator
            | ast.unaryop
            | ast.Attribute,
        ):
            return False
    return True


def _stored(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            out.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.Lambda | ast.ClassDef):
            out.add("<nested>")
    return out


def _base(sub: ast.Subscript) -> str | None:
    node: ast.AST = sub
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _written(body: list[ast.stmt]) -> set[str] | None:
    out = set()
    for st in body:
        for n in ast.walk(st):
            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store | ast.Del):
                b = _base(n)
                if b is None:
                    return None
                out.add(b)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
                return None
    return out


def _indexed_by(sub: ast.Subscript, var: str) -> ast.Subscript | None:
    """``x[v]``, ``x[r, v]`` or ``x[r][v]`` (``v`` the last index, the others free of it):
    the subscript node whose last index is ``v``; None otherwise."""
    idx = sub.slice
    if isinstance(idx, ast.Name) and idx.id == var:
        inner = sub.value
    elif isinstance(idx, ast.Tuple) and idx.elts:
        last = idx.elts[-1]
        if not (isinstance(last, ast.Name) and last.id == var):
            return None
        if any(var in _names(e) for e in idx.elts[:-1]):
            return None
        inner = sub.value
    else:
        return None
    if var in _names(inner):
        return None
    return sub


def _names(e: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(e) if isinstance(n, ast.Name)}


def _slice(r: _Range) -> ast.Slice:
    return ast.Slice(
        lower=copy.deepcopy(r.lo) if r.lo is not None else None, upper=copy.deepcopy(r.hi)
    )


def _np_attr(name: str, np_name: str) -> ast.Attribute:
    return ast.Attribute(value=ast.Name(np_name, ast.Load()), attr=name, ctx=ast.Load())


class _Vectorizer(ast.NodeTransformer):
    """Rewrites one element-wise expression over ``v`` into its slice form; raises _Skip on
    anything it does not know to be element-wise."""

    def __init__(self, r: _Range, blocked: set[str], np_name: str):
        self.r, self.blocked, self.np = r, blocked, np_name
        self.uses_var = False

    def visit_Name(self, n: ast.Name) -> ast.AST:
        if n.id == self.r.var:
            raise _Skip("the loop variable is used as a value")
        if n.id in self.blocked:
            raise _Skip("a name the loop assigns")
        return n

    def visit_Constant(self, n: ast.Constant) -> ast.AST:
        if not isinstance(n.value, int | float) or isinstance(n.value, bool):
            raise _Skip("a non-numeric constant")
        return n

    def visit_BinOp(self, n: ast.BinOp) -> ast.AST:
        if not isinstance(n.op, _ARITH):
            raise _Skip("an operator that is not arithmetic")
        return self.generic_visit(n)

    def visit_UnaryOp(self, n: ast.UnaryOp) -> ast.AST:
        if not isinstance(n.op, ast.USub | ast.UAdd):
            raise _Skip("a unary operator that is not arithmetic")
        return self.generic_visit(n)

    def visit_Subscript(self, n: ast.Subscript) -> ast.AST:
        if self.r.var not in _names(n):
            if _base(n) in self.blocked or _names(n) & self.blocked:
                raise _Skip("an element the loop writes")
            return n
        if _indexed_by(n, self.r.var) is None:
            raise _Skip("an index that is not the loop variable")
        self.uses_var = True
        out = copy.deepcopy(n)
        if isinstance(out.slice, ast.Tuple):
            out.slice.elts[-1] = _slice(self.r)
        else:
            out.slice = _slice(self.r)
        return out

    def visit_Call(self, n: ast.Call) -> ast.AST:
        if n.keywords:
            raise _Skip("keyword arguments")
        f = n.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            mod = f.value.id
            if mod in ("math", "np", "numpy", self.np) and f.attr in _UFUNCS:
                args = [self.visit(a) for a in n.args]
                return ast.Call(_np_attr(_UFUNCS[f.attr], self.np), args, [])
        if isinstance(f, ast.Name) and f.id in _BUILTIN and len(n.args) in (1, 2):
            if f.id in ("max", "min") and len(n.args) != 2:
                raise _Skip("max/min of an iterable")
            args = [self.visit(a) for a in n.args]
            return ast.Call(_np_attr(_BUILTIN[f.id], self.np), args, [])
        raise _Skip("a call that is not a known element-wise function")

    def generic_visit(self, n: ast.AST) -> ast.AST:
        if not isinstance(
            n, ast.BinOp | ast.UnaryOp | ast.operator | ast.unaryop | ast.Load | ast.expr_context
        ):
            raise _Skip(f"unsupported {type(n).__name__}")
        return super().generic_visit(n)


@dataclass
class _Ctx:
    tree: ast.Module
    func: ast.FunctionDef
    np_name: str


def _np_name(tree: ast.Module) -> str | None:
    """The name numpy is bound to at module level (adding ``import numpy as np`` when it is
    not imported); None when ``np`` means something else."""
    for st in tree.body:
        if isinstance(st, ast.Import):
            for a in st.names:
                if a.name == "numpy":
                    return a.asname or "numpy"
    bound = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    for st in tree.body:
        if isinstance(st, ast.Import | ast.ImportFrom):
            bound |= {a.asname or a.name.split(".")[0] for a in st.names}
    if "np" in bound:
        return None
    at = 0
    while at < len(tree.body) and isinstance(tree.body[at], ast.Import | ast.ImportFrom):
        at += 1
    if (
        tree.body
        and isinstance(tree.body[0], ast.Expr)
        and isinstance(tree.body[0].value, ast.Constant)
        and isinstance(tree.body[0].value.value, str)
    ):
        at = max(at, 1)
    tree.body.insert(at, ast.Import([ast.alias("numpy", "np")]))
    return "np"


def _parent_list(func: ast.AST, loop: ast.For) -> tuple[list[ast.stmt], int]:
    for n in ast.walk(func):
        for field in ("body", "orelse", "finalbody"):
            lst = getattr(n, field, None)
            if isinstance(lst, list):
                for i, st in enumerate(lst):
                    if st is loop:
                        return lst, i
    raise _Skip("loop not found")


def _elementwise(ctx: _Ctx, loop: ast.For, r: _Range) -> list[ast.stmt]:
    """The body's statements in slice form."""
    body = loop.body
    written = _written(body)
    if written is None or _stored(ast.Module(body, [])):
        raise _Skip("the body assigns names")
    out = []
    for st in body:
        if isinstance(st, ast.Assign) and len(st.targets) == 1:
            target, value = st.targets[0], st.value
        elif isinstance(st, ast.AugAssign) and isinstance(st.op, _ARITH):
            target, value = st.target, st.value
        else:
            raise _Skip("not an element assignment")
        if not isinstance(target, ast.Subscript) or _indexed_by(target, r.var) is None:
            raise _Skip("not an element assignment")
        # a written array is referenced only at the element written
        vec = _Vectorizer(r, set(), ctx.np_name)
        for other in ast.walk(value):
            here = ast.dump(ast.Subscript(target.value, target.slice, ast.Load()))
            if (
                isinstance(other, ast.Subscript)
                and _base(other) in written
                and ast.dump(other) != here
            ):
                raise _Skip("an array read at another element than written")
        new_value = vec.visit(copy.deepcopy(value))
        new_target = vec.visit_Subscript(target)
        new_target.ctx = ast.Store()
        if isinstance(st, ast.Assign):
            out.append(ast.Assign([new_target], new_value))
        else:
            out.append(ast.AugAssign(new_target, st.op, new_value))
    return out


def t_vectorize(ctx: _Ctx, loop: ast.For) -> tuple[str, str]:
    r = _range(loop)
    if r is None:
        raise _Skip("not a range loop")
    stmts = _elementwise(ctx, loop, r)
    lst, i = _parent_list(ctx.func, loop)
    lst[i : i + 1] = stmts
    return f"vectorize({r.var})", f"the {r.var} loop as NumPy slice operations"


def t_reduce(ctx: _Ctx, loop: ast.For) -> tuple[str, str]:
    """``s += f(x[v])`` -> ``s += np.sum(f(x[lo:hi]))`` (``np.dot`` for a product of two
    arrays); ``s = max(s, x[v])`` -> ``np.max`` over the slice."""
    r = _range(loop)
    if r is None or len(loop.body) != 1:
        raise _Skip("not a one-statement range loop")
    st = loop.body[0]
    np_ = ctx.np_name
    if isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name):
        s, op, expr = st.target.id, st.op, st.value
        if not isinstance(op, ast.Add):
            raise _Skip("not a sum")
    elif (
        isinstance(st, ast.Assign)
        and len(st.targets) == 1
        and isinstance(st.targets[0], ast.Name)
        and isinstance(st.value, ast.BinOp)
        and isinstance(st.value.op, ast.Add)
        and isinstance(st.value.left, ast.Name)
        and st.value.left.id == st.targets[0].id
    ):
        s, expr = st.targets[0].id, st.value.right
    elif (
        isinstance(st, ast.Assign)
        and len(st.targets) == 1
        and isinstance(st.targets[0], ast.Name)
        and isinstance(st.value, ast.Call)
        and isinstance(st.value.func, ast.Name)
        and st.value.func.id in ("max", "min")
        and len(st.value.args) == 2
        and not st.value.keywords
        and isinstance(st.value.args[0], ast.Name)
        and st.value.args[0].id == st.targets[0].id
    ):
        s, fn = st.targets[0].id, st.value.func.id
        vec = _Vectorizer(r, {s}, np_)
        part = vec.visit(copy.deepcopy(st.value.args[1]))
        if not vec.uses_var:
            raise _Skip("nothing indexed by the loop")
        call = ast.Call(_np_attr(fn, np_), [part], [])
        new = ast.Assign(
            [ast.Name(s, ast.Store())],
            ast.Call(ast.Name(fn, ast.Load()), [ast.Name(s, ast.Load()), call], []),
        )
        # np.max of an empty slice raises: only when the loop runs
        guard = ast.If(copy.deepcopy(loop.iter), [new], [])
        lst, i = _parent_list(ctx.func, loop)
        lst[i] = guard
        return f"reduce({r.var}: {fn})", f"the {r.var} loop's {fn} as np.{fn} over a slice"
    else:
        raise _Skip("not a reduction")
    vec = _Vectorizer(r, {s}, np_)
    if (
        isinstance(expr, ast.BinOp)
        and isinstance(expr.op, ast.Mult)
        and isinstance(expr.left, ast.Subscript)
        and isinstance(expr.right, ast.Subscript)
    ):
        a, b = vec.visit(copy.deepcopy(expr.left)), vec.visit(copy.deepcopy(expr.right))
        if not vec.uses_var:
            raise _Skip("nothing indexed by the loop")
        total: ast.expr = ast.Call(_np_attr("dot", np_), [a, b], [])
        how = "np.dot"
    else:
        part = vec.visit(copy.deepcopy(expr))
        if not vec.uses_var:
            raise _Skip("nothing indexed by the loop")
        total = ast.Call(_np_attr("sum", np_), [part], [])
        how = "np.sum"
    new = ast.AugAssign(ast.Name(s, ast.Store()), ast.Add(), total)
    lst, i = _parent_list(ctx.func, loop)
    lst[i] = new
    return f"reduce({r.var}: {how})", f"the {r.var} loop's sum as {how} over slices"


def _index2(sub: ast.AST) -> tuple[str, str, str] | None:
    """``X[a][b]`` or ``X[a, b]`` with name indices -> (X, a, b)."""
    if not isinstance(sub, ast.Subscript):
        return None
    if isinstance(sub.slice, ast.Tuple) and len(sub.slice.elts) == 2:
        a, b = sub.slice.elts
        base = sub.value
    elif isinstance(sub.value, ast.Subscript):
        a, b, base = sub.value.slice, sub.slice, sub.value.value
    else:
        return None
    if isinstance(base, ast.Name) and isinstance(a, ast.Name) and isinstance(b, ast.Name):
        return base.id, a.id, b.id
    return None


def t_matmul(ctx: _Ctx, loop: ast.For) -> tuple[str, str]:
    """The triple loop of ``C[i][j] (+)= sum_k A[i][k] * B[k][j]`` -> ``A @ B`` on slices."""
    ri = _range(loop)
    if ri is None or ri.lo is not None or len(loop.body) != 1:
        raise _Skip("not an i loop from 0")
    lj = loop.body[0]
    rj = _range(lj)
    if rj is None or rj.lo is not None:
        raise _Skip("not a j loop from 0")
    body = lj.body
    init = None
    if len(body) == 3:
        init, lk, store = body
        if not (
            isinstance(init, ast.Assign)
            and len(init.targets) == 1
            and isinstance(init.targets[0], ast.Name)
            and isinstance(init.value, ast.Constant)
            and init.value.value == 0
            and isinstance(store, ast.Assign)
            and len(store.targets) == 1
            and isinstance(store.value, ast.Name)
            and store.value.id == init.targets[0].id
        ):
            raise _Skip("not the accumulator form")
        acc_name = init.targets[0].id
        c = _index2(store.targets[0])
    elif len(body) == 1:
        lk = body[0]
        acc_name = None
        c = None
    else:
        raise _Skip("not a matmul nest")
    rk = _range(lk)
    if rk is None or rk.lo is not None or len(lk.body) != 1:
        raise _Skip("not a k loop from 0")
    st = lk.body[0]
    if not (isinstance(st, ast.AugAssign) and isinstance(st.op, ast.Add)):
        raise _Skip("not an accumulation")
    if acc_name is not None:
        if not (isinstance(st.target, ast.Name) and st.target.id == acc_name):
            raise _Skip("accumulates elsewhere")
    else:
        c = _index2(st.target)
    i, j, k = ri.var, rj.var, rk.var
    if c is None or c[1:] != (i, j):
        raise _Skip("the output is not C[i][j]")
    e = st.value
    if not (isinstance(e, ast.BinOp) and isinstance(e.op, ast.Mult)):
        raise _Skip("not a product")
    x, y = _index2(e.left), _index2(e.right)
    if x is None or y is None:
        raise _Skip("not a product of two matrices")
    if x[1:] == (k, j) and y[1:] == (i, k):
        x, y = y, x
    if x[1:] != (i, k) or y[1:] != (k, j) or c[0] in (x[0], y[0]):
        raise _Skip("not C[i][j] += A[i][k] * B[k][j]")
    np_ = ctx.np_name
    names_in_bounds = _names(ri.hi) | _names(rj.hi) | _names(rk.hi)
    if {i, j, k} & names_in_bounds:
        raise _Skip("bounds depend on the loops")

    def sl(name: str, a: ast.expr, b: ast.expr) -> ast.Subscript:
        arr = ast.Call(_np_attr("asarray", np_), [ast.Name(name, ast.Load())], [])
        return ast.Subscript(
            arr,
            ast.Tuple(
                [ast.Slice(None, copy.deepcopy(a)), ast.Slice(None, copy.deepcopy(b))], ast.Load()
            ),
            ast.Load(),
        )

    prod = ast.BinOp(sl(x[0], ri.hi, rk.hi), ast.MatMult(), sl(y[0], rk.hi, rj.hi))
    target = ast.Subscript(
        ast.Name(c[0], ast.Load()),
        ast.Tuple(
            [ast.Slice(None, copy.deepcopy(ri.hi)), ast.Slice(None, copy.deepcopy(rj.hi))],
            ast.Load(),
        ),
        ast.Store(),
    )
    new: ast.stmt
    if acc_name is not None:
        new = ast.Assign([target], prod)
    else:
        new = ast.AugAssign(target, ast.Add(), prod)
    lst, idx = _parent_list(ctx.func, loop)
    lst[idx] = new
    return f"matmul({i}, {j}, {k})", "the matrix-multiply triple loop as one NumPy A @ B"


def t_hoist(ctx: _Ctx, loop: ast.For) -> tuple[str, str]:
    """Invariant arithmetic, attribute loads (``math.exp``) and reads of arrays the loop does
    not write, evaluated once before the loop (under ``if range(...)``: only when it runs)."""
    r = _range(loop)
    if r is None:
        raise _Skip("not a range loop")
    blocked = _stored(ast.Module(loop.body, [])) | {r.var}
    written = _written(loop.body)
    if written is None or "<nested>" in blocked:
        raise _Skip("writes through attributes or nested functions")
    found: list[ast.expr] = []

    def ok(e: ast.expr) -> bool:
        for n in ast.walk(e):
            if isinstance(n, ast.Name):
                if n.id in blocked:
                    return False
            elif isinstance(n, ast.Subscript):
                if _base(n) in written or _base(n) is None:
                    return False
            elif isinstance(n, ast.Attribute):
                if not isinstance(n.value, ast.Name | ast.Attribute):
                    return False
            elif not isinstance(
                n,
                ast.BinOp
                | ast.UnaryOp
                | ast.Constant
                | ast.Load
                | ast.operator
                | ast.unaryop
                | ast.Tuple
                | ast.Slice,
            ):
                return False
        return True

    def visit(n: ast.AST) -> None:
        if (
            isinstance(n, ast.BinOp | ast.Subscript | ast.Attribute)
            and isinstance(getattr(n, "ctx", ast.Load()), ast.Load)
            and ok(n)
        ):
            found.append(n)
            return
        if isinstance(n, ast.BoolOp | ast.IfExp | ast.Lambda | ast.comprehension):
            return
        if isinstance(n, ast.Subscript | ast.Attribute) and not isinstance(n.ctx, ast.Load):
            # a target: its index may be hoisted, not the target itself
            visit(n.slice) if isinstance(n, ast.Subscript) else None
            return
        for c in ast.iter_child_nodes(n):
            visit(c)

    for st in loop.body:
        visit(st)
    groups: dict[str, list[ast.expr]] = {}
    for e in found:
        groups.setdefault(ast.unparse(e), []).append(e)
    if not groups:
        raise _Skip("nothing invariant")
    used = _names(ctx.func)
    assigns, shown = [], []
    k = 0
    for text, nodes in groups.items():
        while f"_h{k}" in used:
            k += 1
        name = f"_h{k}"
        used.add(name)
        assigns.append(ast.Assign([ast.Name(name, ast.Store())], copy.deepcopy(nodes[0])))
        shown.append(text)
        for e in nodes:
            _swap(loop, e, ast.Name(name, ast.Load()))
    lst, i = _parent_list(ctx.func, loop)
    lst[i] = ast.If(copy.deepcopy(loop.iter), [*assigns, loop], [])
    return (
        f"hoist({r.var}: {', '.join(shown)})",
        f"hoist {', '.join(shown)} out of the {r.var} loop",
    )


def _swap(root: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(root):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if v is old:
                        value[i] = new
                        return
    raise _Skip("node not found")


_TRANSFORMS: list[tuple[str, Callable[[_Ctx, ast.For], tuple[str, str]]]] = [
    ("vectorize", t_vectorize),
    ("reduce", t_reduce),
    ("matmul", t_matmul),
    ("hoist", t_hoist),
]


def _loops(func: ast.FunctionDef) -> list[ast.For]:
    return [n for n in ast.walk(func) if isinstance(n, ast.For)]


def candidates(source: str, entry: str) -> list[Candidate]:
    """Every rewrite that applies to the function `entry` of `source`, in a fixed order."""
    try:
        base = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    funcs = [n for n in base.body if isinstance(n, ast.FunctionDef) and n.name == entry]
    if len(funcs) != 1:
        return []
    k = base.body.index(funcs[0])
    n_loops = len(_loops(funcs[0]))
    out = []
    for i in range(n_loops):
        for kind, fn in _TRANSFORMS:
            tree = copy.deepcopy(base)
            func = tree.body[k]
            loop = _loops(func)[i]
            np_name = _np_name(tree)
            if np_name is None:
                return out
            try:
                name, desc = fn(_Ctx(tree, func, np_name), loop)
                text = ast.unparse(ast.fix_missing_locations(tree)) + "\n"
                compile(text, "<rewrite>", "exec")
            except (_Skip, SyntaxError, ValueError, TypeError, AttributeError, RecursionError):
                continue
            out.append(Candidate(kind, name, text, desc))
    return out
