"""python/airda/_C.pyi declares what the built module airda._C holds: the same functions and
classes, the same methods and properties, and the same parameters (names, order, which have a
default). The stub is parsed with ``ast``; the module's signatures are read from the first line
of each pybind11 docstring."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

STUB = Path(__file__).resolve().parents[1] / "python" / "airda" / "_C.pyi"

Params = tuple[tuple[str, bool], ...]  # (name, has a default), self excluded


def _stub_params(fn: ast.FunctionDef) -> Params:
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [False] * (len(positional) - len(args.defaults)) + [True] * len(args.defaults)
    out = [(a.arg, d) for a, d in zip(positional, defaults, strict=True)]
    out += [(a.arg, d is not None) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    return tuple(p for p in out if p[0] != "self")


def _stub() -> tuple[dict[str, Params], dict[str, dict[str, Params | None]]]:
    """Functions -> parameters, and classes -> {method: parameters, property: None}."""
    tree = ast.parse(STUB.read_text(), str(STUB))
    functions: dict[str, Params] = {}
    classes: dict[str, dict[str, Params | None]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = _stub_params(node)
        elif isinstance(node, ast.ClassDef):
            members: dict[str, Params | None] = {}
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    is_property = any(
                        isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list
                    )
                    members[item.name] = None if is_property else _stub_params(item)
            classes[node.name] = members
    return functions, classes


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:])
    return parts


def _native_params(obj: object, name: str) -> Params:
    """The parameters of a pybind11 function or method, from its docstring's signature line."""
    first = (getattr(obj, "__doc__", None) or "").lstrip().splitlines()[0]
    match = re.match(rf"{re.escape(name)}\((.*)\) -> .*$", first)
    assert match, f"{name}: no signature in its docstring: {first!r}"
    out = []
    for part in _split_top_level(match.group(1)):
        arg = part.split(":", 1)[0].strip()
        if arg != "self":
            out.append((arg, "=" in part))
    return tuple(out)


def _native() -> tuple[dict[str, Params], dict[str, dict[str, Params | None]]]:
    module = importlib.import_module("airda._C")
    functions: dict[str, Params] = {}
    classes: dict[str, dict[str, Params | None]] = {}
    for name in dir(module):
        if name.startswith("_"):
            continue
        obj = getattr(module, name)
        if isinstance(obj, type):
            members: dict[str, Params | None] = {}
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                members[attr] = None if isinstance(value, property) else _native_params(value, attr)
            classes[name] = members
        elif callable(obj):
            functions[name] = _native_params(obj, name)
    return functions, classes


@pytest.fixture(scope="module")
def both():
    pytest.importorskip("airda._C", reason="the compiled module is not built")
    return _stub(), _native()


def test_the_stub_declares_every_function_of_the_module_and_no_other(both):
    (stub, _), (native, _) = both
    assert not sorted(set(native) - set(stub)), "bound but missing from _C.pyi"
    assert not sorted(set(stub) - set(native)), "in _C.pyi but not bound"


def test_the_stub_declares_every_class_method_and_property(both):
    (_, stub), (_, native) = both
    assert sorted(stub) == sorted(native)
    for name in native:
        assert sorted(stub[name]) == sorted(native[name]), f"members of {name}"
        for member, params in native[name].items():
            kind = "a property" if params is None else "a method"
            assert (stub[name][member] is None) == (params is None), f"{name}.{member}: {kind}"


def test_the_stub_gives_every_parameter_in_order(both):
    (stub_fns, stub_classes), (native_fns, native_classes) = both
    wrong = [
        f"{name}: stub {stub_fns[name]}, module {params}"
        for name, params in native_fns.items()
        if name in stub_fns and stub_fns[name] != params
    ]
    wrong += [
        f"{cls}.{member}: stub {stub_classes[cls][member]}, module {params}"
        for cls, members in native_classes.items()
        for member, params in members.items()
        if params is not None
        and member in stub_classes.get(cls, {})
        and stub_classes[cls][member] != params
    ]
    assert not wrong, "\n".join(wrong)


def test_the_comparison_sees_a_difference():
    """The parsers find what they look for (a stub that drifted would not pass unnoticed)."""
    functions, classes = _stub()
    assert functions["profile_variant"][-1] == ("stop_below", True)
    assert classes["NeighbourWidths"]["__init__"] == (
        ("p", False),
        ("consider_endpoints", False),
        ("by_row", True),
    )
    assert classes["NeighbourWidths"]["mu"] is None
    doc = "f(x: list[tuple[int, int]], y: int = 3) -> None\n\nText."
    assert _native_params(type("F", (), {"__doc__": doc})(), "f") == (("x", False), ("y", True))
