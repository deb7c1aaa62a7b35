"""Spaces: validation, JSON round-trip, encoding, sampling, mutation, neighbours, enumeration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from airda.space import Categorical, Fixed, Float, Int, Space, SpaceError, candidate_key


def space() -> Space:
    return Space(
        {
            "lr": Float(1e-4, 1e-1, log=True),
            "drop": Float(0.0, 0.5, step=0.1),
            "layers": Int(1, 9, step=2),
            "units": Int(1, 1024, log=True),
            "opt": Categorical(["sgd", "adam", "rmsprop"]),
            "momentum": Float(0.0, 0.99, when={"opt": ["sgd", "rmsprop"]}),
            "nesterov": Categorical([True, False], when={"opt": "sgd"}),
            "adam": Space(
                {"beta1": Float(0.8, 0.99), "eps": Float(1e-9, 1e-6, log=True)},
                when={"opt": "adam"},
            ),
            "seed": Fixed(0),
        }
    )


def test_sampling_respects_bounds_types_and_conditions():
    s = space()
    rng = np.random.default_rng(0)
    seen_opts = set()
    for _ in range(300):
        c = s.sample(rng)
        assert s.validate(c) == c
        assert 1e-4 <= c["lr"] <= 1e-1
        assert c["layers"] in (1, 3, 5, 7, 9)
        assert isinstance(c["units"], int)
        assert ("nesterov" in c) == (c["opt"] == "sgd")
        assert ("momentum" in c) == (c["opt"] in ("sgd", "rmsprop"))
        assert ("adam.beta1" in c) == (c["opt"] == "adam")
        assert c["seed"] == 0
        seen_opts.add(c["opt"])
    assert seen_opts == {"sgd", "adam", "rmsprop"}


def test_log_float_is_log_uniform():
    s = Space({"x": Float(1e-6, 1.0, log=True)})
    xs = np.array([s.sample(np.random.default_rng(i))["x"] for i in range(2000)])
    # A quarter of the log range lies below 10^-4.5.
    assert abs(np.mean(xs < 10**-4.5) - 0.25) < 0.04


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        ({"lr": 0.01}, "'drop' is missing"),
        ({**{"lr": 1.0}}, "outside"),
        ("not a dict", "must be a dict"),
    ],
)
def test_validation_names_the_parameter(candidate, message):
    with pytest.raises(SpaceError, match=message):
        space().validate(candidate)


def test_validation_errors():
    s = space()
    good = s.sample(np.random.default_rng(1))
    with pytest.raises(SpaceError, match="unknown parameter"):
        s.validate({**good, "bogus": 1})
    with pytest.raises(SpaceError, match="'layers': 2 is not on the grid"):
        s.validate({**good, "layers": 2})
    with pytest.raises(SpaceError, match="'layers': expected an int"):
        s.validate({**good, "layers": 3.5})
    with pytest.raises(SpaceError, match="'opt': 'adamw' is not one of"):
        s.validate({**good, "opt": "adamw"})
    with pytest.raises(SpaceError, match="'drop': value is NaN"):
        s.validate({**good, "drop": float("nan")})
    with pytest.raises(SpaceError, match="'seed' is fixed to 0"):
        s.validate({**good, "seed": 1})
    inactive = {**good, "opt": "adam", "adam.beta1": 0.9, "adam.eps": 1e-8, "nesterov": True}
    inactive.pop("momentum", None)
    with pytest.raises(SpaceError, match="'nesterov' is inactive"):
        s.validate(inactive)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Float(1.0, 0.0), "low <= high"),
        (lambda: Float(0.0, 1.0, log=True), "low > 0"),
        (lambda: Float(0.0, math.inf), "finite"),
        (lambda: Int(1, 5, step=0), "step must be >= 1"),
        (lambda: Int(1.5, 5), "must be an int"),
        (lambda: Categorical([]), "at least one"),
        (lambda: Categorical([1, 1]), "distinct"),
        (lambda: Categorical([[1]]), "must be None, bool"),
        (lambda: Space({"a": Int(0, 1, when={"b": 1})}), "unknown parameter"),
        (lambda: Space({"a": Int(0, 1, when={"b": 0}), "b": Int(0, 1, when={"a": 0})}), "cycle"),
        (lambda: Space({"a": Int(0, 1), "b": Int(0, 1, when={"a": 5})}), "can never take"),
        (lambda: Space({"a.b": 1}), "without '.'"),
    ],
)
def test_bad_definitions(build, message):
    with pytest.raises(SpaceError, match=message):
        build()


def test_json_round_trip():
    s = space()
    again = Space.from_json(s.to_json())
    assert again == s
    assert again.names == s.names
    rng = np.random.default_rng(2)
    for _ in range(20):
        c = s.sample(rng)
        assert again.validate(c) == c


def test_dict_form():
    s = Space({"act": ["relu", "gelu"], "width": Int(1, 4), "bias": True, "sub": {"k": [3, 5]}})
    assert isinstance(s["act"], Categorical)
    assert isinstance(s["bias"], Fixed)
    assert s.names == ["act", "width", "bias", "sub.k"]


def test_encode_decode_round_trip():
    s = space()
    rng = np.random.default_rng(3)
    for _ in range(100):
        c = s.sample(rng)
        x = s.encode(c)
        assert x.shape == (s.dim,)
        assert np.all((x[~np.isnan(x)] >= 0) & (x[~np.isnan(x)] <= 1))
        assert np.isnan(x).sum() == s.dim - len(c)
        back = s.decode(x)
        assert back.keys() == c.keys()
        for k in c:
            p = s[k]
            if isinstance(p, Float) and p.step is None:
                assert back[k] == pytest.approx(c[k], rel=1e-9)
            else:
                assert back[k] == c[k]


def test_mutate_changes_exactly_one_active_parameter():
    s = Space({f"x{i}": Categorical([0, 1, 2]) for i in range(8)})
    rng = np.random.default_rng(4)
    c = s.sample(rng)
    for _ in range(50):
        m = s.mutate(c, rng)
        assert s.validate(m) == m
        assert sum(m[k] != c[k] for k in c) == 1


def test_mutate_activates_children_properly():
    s = space()
    rng = np.random.default_rng(5)
    for _ in range(100):
        c = s.sample(rng)
        m = s.mutate(c, rng, n=2)
        assert s.validate(m) == m


def test_neighbours():
    s = Space({"a": Categorical(["x", "y", "z"]), "n": Int(0, 100), "f": Float(0.0, 1.0)})
    c = {"a": "y", "n": 0, "f": 0.5}
    nbrs = s.neighbours(c, step=0.1)
    assert {"a": "x", "n": 0, "f": 0.5} in nbrs
    assert {"a": "z", "n": 0, "f": 0.5} in nbrs
    assert {"a": "y", "n": 1, "f": 0.5} in nbrs
    assert all(n["n"] >= 0 for n in nbrs)
    fs = sorted(n["f"] for n in nbrs if n["a"] == "y" and n["n"] == 0)
    assert fs == pytest.approx([0.4, 0.6])
    assert candidate_key(c) not in {candidate_key(n) for n in nbrs}


def test_size_and_enumeration_with_conditions():
    s = Space(
        {
            "op": Categorical(["conv", "pool", "skip"]),
            "k": Categorical([3, 5, 7], when={"op": "conv"}),
            "stride": Int(1, 2, when={"op": ["conv", "pool"]}),
        }
    )
    all_c = list(s.enumerate())
    # conv: 3 kernels x 2 strides; pool: 2 strides; skip: 1
    assert len(all_c) == 9 == s.size()
    assert len({candidate_key(c) for c in all_c}) == 9
    for c in all_c:
        assert s.validate(c) == c
    assert Space({"x": Float(0, 1)}).size() == math.inf
    with pytest.raises(SpaceError, match="cannot be enumerated"):
        next(Space({"x": Float(0, 1)}).enumerate())


def test_grid_covers_finite_and_gridded_continuous():
    s = Space({"a": Categorical([1, 2]), "x": Float(0.0, 1.0)})
    g = list(s.grid(resolution=4))
    assert len(g) == 8
    assert sorted({c["x"] for c in g}) == pytest.approx([0.125, 0.375, 0.625, 0.875])
