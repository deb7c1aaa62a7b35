"""Vectorisation rewrites of C kernels for the rewrites library: an inline vector ``exp`` and
a clone of the entry function for AVX+FMA behind a run-time CPU check.

``vexp(j)``: the calls to ``exp`` in an innermost loop become calls to ``airda_exp``, a
``static inline`` double-precision exp added to the file (the classic range reduction
``x = k ln2 + r`` and a degree-12 polynomial in Estrin's form, the scale ``2^k`` built from its
bits), and the loop gets ``#pragma omp simd`` (with ``reduction(+:s)`` for a sum). GCC at
``-O2`` calls libm's scalar ``exp`` once per element; glibc's vector variants (libmvec,
``_ZGVbN2v_exp``) are only declared under ``-ffast-math`` and live in ``libmvec.so``, which the
compiled candidates are not linked against, so an inline function is the one way to a
vectorised loop with the spec's flags. ``#pragma GCC optimize("no-trapping-math")`` is added
at the top of the file: with trapping math GCC will not if-convert the clamps of the argument,
and the loop stays scalar. What it relaxes:

- rounding: at most 3 ulp from glibc's (correctly rounded in most cases) ``exp`` on 300,000
  arguments over [-745, 709.7] (0.4 ulp on average; 1 subnormal ulp for results below
  2^-1022); NaN, +-inf, 0, overflow to inf and underflow to 0 as ``exp``;
- ``errno``: ``airda_exp`` never sets ``ERANGE`` (glibc's ``exp`` does on overflow/underflow);
- floating-point exception flags (``-fno-trapping-math``): a program that tests
  ``fetestexcept`` may see other flags; no value changes.

The spec's tolerances decide: the cascade compares every candidate's outputs with the
reference's.

``isa(avx,fma)``: the entry function's body is copied into ``static`` ``<entry>_avx_fma``
compiled with ``#pragma GCC target("avx,fma")``, and the entry first checks
``__builtin_cpu_supports("avx") && __builtin_cpu_supports("fma")`` and calls it (glibc's libm
dispatches its own ``exp`` to an FMA version in the same way); other CPUs run the original
body. The rewrites that follow transform the entry's body and the clone is copied from it again
(:func:`sync`), so the chain keeps working on one body. Offered on x86-64 only, for functions
with a loop and named parameters. FMA contraction changes rounding (one rounding instead of
two per ``a * b + c``): within the spec's tolerances or the cascade refuses it.

Example:
    >>> from airda.codeopt.evolve._rewrites_c import candidates
    >>> src = '''
    ... #include <math.h>
    ... void f(double *y, const double *x, int n) {
    ...     for (int j = 0; j < n; j++) y[j] = exp(x[j]);
    ... }'''
    >>> c = next(c for c in candidates(src, "f") if c.kind == "vexp")
    >>> c.name, "airda_exp(x[j])" in c.source, "#pragma omp simd" in c.source
    ('vexp(j)', True, True)
"""

from __future__ import annotations

import copy
import functools
import platform

from pycparser import c_ast

from airda.codeopt.evolve import _rewrites_c as rc

__all__ = ["EXP_NAME", "EXP_SOURCE", "simd_safe", "sync", "t_isa", "t_vexp"]

EXP_NAME = "airda_exp"

# 2^52 + 2^51: adding it rounds a double of magnitude < 2^51 to an integer (round to nearest)
# and leaves that integer in the low bits of the sum's representation.
EXP_SOURCE = """
static inline double airda_exp(double x)
{
  unsigned long long k;
  unsigned long long b1;
  unsigned long long b2;
  double s1;
  double s2;
  double t;
  double xc = (x < -746.0) ? (-746.0) : (x);
  xc = (xc > 710.0) ? (710.0) : (xc);
  double kd = (xc * 1.4426950408889634) + 6755399441055744.0;
  kd = kd - 6755399441055744.0;
  double r = (xc - (kd * 6.93147180369123816490e-01)) - (kd * 1.90821492927058770002e-10);
  double r2 = r * r;
  double r4 = r2 * r2;
  double r8 = r4 * r4;
  double a = 1.0 + r;
  double b = 0.5 + (r * 0.16666666666666666);
  double c = 0.041666666666666664 + (r * 0.008333333333333333);
  double d = 0.001388888888888889 + (r * 0.0001984126984126984);
  double e = 2.48015873015873e-05 + (r * 2.7557319223985893e-06);
  double f = 2.755731922398589e-07 + (r * 2.505210838544172e-08);
  double g = 2.08767569878681e-09;
  double p = ((a + (r2 * b)) + (r4 * (c + (r2 * d)))) + (r8 * ((e + (r2 * f)) + (r4 * g)));
  double k1 = ((kd * 0.5) + 6755399441055744.0) - 6755399441055744.0;
  t = k1 + 6755399441055744.0;
  __builtin_memcpy(&k, &t, sizeof(k));
  b1 = (k + 1023ULL) << 52;
  __builtin_memcpy(&s1, &b1, sizeof(s1));
  t = (kd - k1) + 6755399441055744.0;
  __builtin_memcpy(&k, &t, sizeof(k));
  b2 = (k + 1023ULL) << 52;
  __builtin_memcpy(&s2, &b2, sizeof(s2));
  return (p * s1) * s2;
}
"""

_NO_TRAP = 'GCC optimize("no-trapping-math")'


def _defines(unit: rc._Unit, name: str) -> bool:
    for e in unit.ast.ext[unit.n_fake :]:
        if isinstance(e, c_ast.FuncDef) and e.decl.name == name:
            return True
        if isinstance(e, c_ast.Decl) and e.name == name:
            return True
    return False


@functools.cache
def _helper_text() -> str:
    from pycparser import c_parser

    return rc._gen(c_parser.CParser().parse(EXP_SOURCE).ext[0])


def _add_exp(unit: rc._Unit) -> None:
    """Put the pragma and ``airda_exp`` at the top of the file (once)."""
    ext = unit.ast.ext
    if not any(isinstance(e, c_ast.Pragma) and e.string == _NO_TRAP for e in ext):
        ext.insert(unit.n_fake, c_ast.Pragma(_NO_TRAP))
    if _defines(unit, EXP_NAME):
        return
    from pycparser import c_parser

    helper = c_parser.CParser().parse(EXP_SOURCE).ext[0]
    ext.insert(unit.n_fake + 1, helper)


def simd_safe(site: rc._Site) -> bool:
    """May the loop's iterations run as SIMD lanes? Each array it writes is referenced
    through one subscript only, a polynomial that moves with the loop variable (every
    iteration its own element), and it reads no other element of it."""
    body, v = site.loop.stmt, site.info.var
    written = rc._written_arrays(body)
    if written is None:
        return False
    for arr in written:
        refs = rc._refs(body, arr)
        if not all(rc._same_ref(refs[0], r) for r in refs[1:]):
            return False
        subs = rc._subscripts(refs[0])
        polys = [rc._poly(sub) for sub in subs]
        if any(p is None for p in polys):
            return False
        terms = [k for p in polys for k in p if v in k]  # type: ignore[union-attr]
        if not terms or any(k.count(v) > 1 for k in terms):
            return False
    return True


def t_vexp(site: rc._Site, types: dict) -> tuple[str, str]:
    rc._innermost_ok(site)
    calls = [
        (n, p)
        for n, p in rc._preorder(site.loop.stmt)
        if isinstance(n, c_ast.FuncCall)
        and isinstance(n.name, c_ast.ID)
        and n.name.name == "exp"
        and n.args is not None
        and len(n.args.exprs) == 1
    ]
    if not calls:
        raise rc._Skip("no exp call")
    unit = site.unit
    for e in unit.ast.ext[unit.n_fake :]:
        if isinstance(e, c_ast.Decl | c_ast.FuncDef):
            name = e.decl.name if isinstance(e, c_ast.FuncDef) else e.name
            if name == EXP_NAME and rc._gen(e) != _helper_text():
                raise rc._Skip(f"the file has its own {EXP_NAME}")
    for arg_type in {rc._type_of(n.args.exprs[0], types) for n, _ in calls}:
        if arg_type not in ("double", "float", "int", "long", "unsigned int"):
            raise rc._Skip("exp of an argument of unknown type")
    for n, _ in calls:
        n.name = c_ast.ID(EXP_NAME)
    # the pragma: a loop that has one keeps it (an omp simd already there stays)
    parent = site.parent
    has_pragma = False
    if isinstance(parent, c_ast.Compound):
        i = next(k for k, x in enumerate(parent.block_items) if x is site.loop)
        has_pragma = i > 0 and isinstance(parent.block_items[i - 1], c_ast.Pragma)
    if not has_pragma:
        if not simd_safe(site):
            raise rc._Skip("iterations may touch the same element")
        text = "omp simd"
        try:
            text += f" reduction(+:{rc._reduction_scalar(site, types)[0]})"
        except rc._Skip:
            if rc._assigned_scalars(site.loop.stmt) - {
                d.name for d in rc._walk(site.loop.stmt) if isinstance(d, c_ast.Decl)
            }:
                raise rc._Skip("a shared scalar other than a sum") from None
        rc._insert_pragma(site, text)
    _add_exp(unit)
    v = site.info.var
    return (
        f"vexp({v})",
        f"exp as an inline vectorisable {EXP_NAME} (<= 3 ulp, no errno) in the {v} loop, "
        "#pragma omp simd on it",
    )


# --- the AVX+FMA clone --------------------------------------------------------------------------

ISA = "avx,fma"
_SUFFIX = "_avx_fma"


def _clone_name(entry: str) -> str:
    return entry + _SUFFIX


def _is_dispatch(stmt: c_ast.Node) -> bool:
    return isinstance(stmt, c_ast.If) and any(
        isinstance(n, c_ast.FuncCall)
        and isinstance(n.name, c_ast.ID)
        and n.name.name == "__builtin_cpu_supports"
        for n in rc._walk(stmt.cond)
    )


def t_isa(unit: rc._Unit, func: c_ast.FuncDef) -> tuple[str, str]:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise rc._Skip("not an x86-64 machine")
    entry = func.decl.name
    clone = _clone_name(entry)
    if _defines(unit, clone):
        raise rc._Skip("already cloned")
    if not rc._has_loop(func.body):
        raise rc._Skip("no loop")
    ftype = func.decl.type
    params = ftype.args.params if ftype.args else []
    names = []
    for p in params:
        if isinstance(p, c_ast.EllipsisParam) or not isinstance(p, c_ast.Decl):
            raise rc._Skip("variadic or unnamed parameters")
        if p.name is None:
            if isinstance(p.type, c_ast.TypeDecl) and getattr(p.type.type, "names", None) == [
                "void"
            ]:
                continue
            raise rc._Skip("an unnamed parameter")
        names.append(p.name)
    ret = ftype.type
    void = (
        isinstance(ret, c_ast.TypeDecl)
        and isinstance(ret.type, c_ast.IdentifierType)
        and ret.type.names == ["void"]
    )
    call = f"{clone}({', '.join(names)})"
    act = f"{{ {call}; return; }}" if void else f"return {call};"
    check = '__builtin_cpu_supports("avx") && __builtin_cpu_supports("fma")'
    try:
        (dispatch,) = unit.snippet(f"if ({check}) {act}")
    except Exception:
        raise rc._Skip("the dispatch does not parse") from None
    new = copy.deepcopy(func)
    new.decl.name = clone
    new.decl.storage = ["static"]
    t = new.decl.type
    while not isinstance(t, c_ast.TypeDecl):
        t = t.type
    t.declname = clone
    ext = unit.ast.ext
    k = ext.index(func)
    ext[k:k] = [
        c_ast.Pragma("GCC push_options"),
        c_ast.Pragma(f'GCC target("{ISA}")'),
        new,
        c_ast.Pragma("GCC pop_options"),
    ]
    func.body.block_items = [dispatch, *(func.body.block_items or [])]
    return (
        f"isa({ISA})",
        "a copy of the function for AVX+FMA, called when the CPU has them "
        "(__builtin_cpu_supports), the original body otherwise",
    )


def sync(unit: rc._Unit, func: c_ast.FuncDef) -> None:
    """After a rewrite of the entry `func`: its AVX+FMA clone (when there is one) becomes a
    copy of the entry again (its body without the dispatch, its parameters)."""
    clone = _clone_name(func.decl.name)
    for e in unit.ast.ext:
        if isinstance(e, c_ast.FuncDef) and e.decl.name == clone:
            body = [s for s in (func.body.block_items or []) if not _is_dispatch(s)]
            e.body = c_ast.Compound(copy.deepcopy(body))
            e.decl.type.args = copy.deepcopy(func.decl.type.args)
            return
