"""EvolveSpec: checked when made, loaded from TOML with paths relative to the file."""

from __future__ import annotations

import pytest

from airda.codeopt import Arg
from airda.codeopt.evolve import EvolveSpec

SRC = "void f(double* y, int n) { for (int i = 0; i < n; ++i) y[i] = i; }\n"


def test_args_from_text_and_arg_objects():
    spec = EvolveSpec("f", "c", SRC, "f", ["float64[N]:zeros:out", Arg("int32", value=8)],
                      defines={"N": 8})  # fmt: skip
    assert spec.args[0].shape == (8,)
    assert spec.args[0].out
    assert spec.args[1].value == 8
    assert spec.direction == "minimize"
    assert len(spec.key()) == 12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"language": "rust"}, "language must be one of"),
        ({"metric": "speed"}, "metric must be one of"),
        ({"metric": "score"}, "needs a score function"),
        ({"score": len}, "metric is 'time'"),
        ({"entry": "g"}, "does not define or call 'g'"),
        ({"entry": "f; system"}, "identifier"),
        ({"args": []}, "args is empty"),
        ({"args": ["float64[8]", "int32=8"]}, "no argument is marked as an output"),
        ({"args": ["float64[Q]:out"]}, "unknown name 'Q'"),
        ({"quick_args": ["float32[3]:out", "int32=3"]}, "same dtypes"),
        ({"timeout": 0}, "timeout must be a positive"),
        ({"atol": -1}, "atol must be"),
        ({"name": "a b"}, "name must be"),
        ({"source": "  "}, "source is empty"),
        ({"inputs": tuple}, "inputs / quick_inputs are for Python"),
        ({"threads": 0}, "threads must be an int >= 1"),
        ({"threads": 2.0}, "threads must be an int >= 1"),
    ],
)
def test_bad_specs(kwargs, match):
    base = {"name": "f", "language": "c", "source": SRC, "entry": "f",
            "args": ["float64[8]:zeros:out", "int32=8"]}  # fmt: skip
    with pytest.raises(ValueError, match=match):
        EvolveSpec(**(base | kwargs))


def test_python_spec_checks():
    src = "def f(xs):\n    return [2 * x for x in xs]\n"
    spec = EvolveSpec("p", "python", src, "f", inputs=lambda: ([1.0, 2.0],))
    assert spec.args == ()
    with pytest.raises(ValueError, match="needs inputs"):
        EvolveSpec("p", "python", src, "f")
    with pytest.raises(ValueError, match="no top-level function 'f'"):
        EvolveSpec("p", "python", "def g():\n    f(1)\n", "f", inputs=tuple)
    with pytest.raises(ValueError, match="does not parse"):
        EvolveSpec("p", "python", "def f(:\n", "f", inputs=tuple)


def test_from_toml(tmp_path):
    (tmp_path / "k.c").write_text(SRC)
    (tmp_path / "h.py").write_text("def check(outs, ref):\n    return outs[0][0] == 0\n")
    (tmp_path / "spec.toml").write_text(
        'name = "k"\nsource = "k.c"\nentry = "f"\n'
        'args = ["float64[N]:zeros:out", "int32=N"]\nquick_args = ["float64[3]:zeros:out", '
        '"int32=3"]\ndefines = { N = 16 }\natol = 1e-9\nflags = "-O1"\n'
        'harness = "h.py"\nverify = "check"\n'
    )
    spec = EvolveSpec.from_toml(tmp_path / "spec.toml")
    assert spec.language == "c"
    assert spec.source == SRC
    assert spec.flags == "-O1"
    assert spec.args[0].shape == (16,)
    assert spec.quick_args[0].shape == (3,)
    assert spec.verify([[0.0]], None)
    assert str(tmp_path) in spec.include_dirs


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('name = "k"\nsource = "k.c"\nentry = "f"\nargs = ["float64[4]:out"]\nbogus = 1\n',
         "unknown keys \\['bogus'\\]"),
        ('name = "k"\nentry = "f"\n', "missing key 'source'"),
        ('name = "k"\nsource = "none.c"\nentry = "f"\n', "not found"),
        ('name = "k"\nsource = "k.c"\nentry = "f"\nargs = ["float64[4]:out"]\nverify = "v"\n',
         "harness"),
        ('name = "k"\nsource = "k.c"\nentry = "f"\nargs = ["float64[4]:out"]\n'
         'harness = "h.py"\nverify = "nope"\n', "no such function"),
        ('name = "k"\nsource = "k.c"\nentry = "f"\nargs = "float64[4]:out"\n', "string"),
        ("name = \n", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_toml(tmp_path, text, match):
    (tmp_path / "k.c").write_text(SRC)
    (tmp_path / "h.py").write_text("x = 1\n")
    (tmp_path / "spec.toml").write_text(text)
    with pytest.raises(ValueError, match=match):
        EvolveSpec.from_toml(tmp_path / "spec.toml")
