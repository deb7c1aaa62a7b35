"""TableEncoder: exact round trips (dtypes, missing values, datetimes, constants, identifiers)
and the shape of the arrays a synthesizer sees."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="airda.synth needs the synth extra (pandas)")

from airda.synth import (  # noqa: E402
    Encoded,
    FixedCombinations,
    Inequality,
    Metadata,
    Positive,
    Range,
    SynthDataError,
    TableEncoder,
)


def _table(n: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, n).round(3)
    x[1] = np.nan
    return pd.DataFrame(
        {
            "id": [f"C{i:04d}" for i in range(n)],
            "x": x,
            "n": rng.integers(0, 9, n),
            "c": pd.Series(rng.choice(["a", "b", "-"], n), dtype=object).replace("-", np.nan),
            "flag": rng.random(n) < 0.5,
            "day": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%d/%m/%Y"),
            "ts": pd.date_range("2024-01-01 08:00", periods=n, freq="90min"),
            "const": ["k"] * n,
            "cat": pd.Categorical(rng.choice(["lo", "hi"], n)),
        }
    )


def test_round_trip_is_exact():
    df = _table()
    enc = TableEncoder(Metadata.detect(df)).fit(df)
    e = enc.encode(df)
    assert isinstance(e, Encoded)
    assert e.num.dtype == np.float64
    assert e.cat.dtype == np.int64
    assert not np.isnan(e.num).any()
    assert "id" not in e.num_names + e.cat_names
    assert "const" not in e.num_names + e.cat_names
    assert "x#missing" in e.cat_names
    assert all(e.cat[:, j].min() >= 0 and e.cat[:, j].max() < s for j, s in
               enumerate(e.cat_sizes))  # fmt: skip
    back = enc.decode(e)
    pd.testing.assert_frame_equal(back, df)


def test_tz_aware_datetimes_and_nullable_missing_round_trip():
    df = pd.DataFrame(
        {
            "t": pd.date_range("2024-03-01", periods=6, freq="h", tz="Europe/Oslo"),
            "v": [1.5, None, 2.5, 3.0, None, 4.0],
        }
    )
    enc = TableEncoder(Metadata.detect(df)).fit(df)
    pd.testing.assert_frame_equal(enc.decode(enc.encode(df)), df)


def test_constraints_reparameterise_and_round_trip():
    df = pd.DataFrame({"lo": [1.0, 2.0, 3.0, 4.0], "hi": [1.5, 2.0, 7.0, 4.25],
                       "a": ["x", "y", "x", "z"], "b": [1, 2, 1, 3]})  # fmt: skip
    md = Metadata.detect(df)
    md.add_constraint(Inequality("lo", "hi")).add_constraint(Range("lo", 0, 5))
    md.add_constraint(FixedCombinations(["a", "b"]))
    enc = TableEncoder(md).fit(df)
    e = enc.encode(df)
    assert "fixed(a,b)" in e.cat_names
    assert "a" not in e.cat_names
    j = e.num_names.index("hi")
    assert np.allclose(e.num[:, j], np.log(df.hi - df.lo + enc.metadata.constraints[0]._delta))
    pd.testing.assert_frame_equal(enc.decode(e), df)


def test_decode_holds_range_and_integers_for_any_model_values():
    df = pd.DataFrame({"n": [1, 3, 5, 9], "p": [0.0, 2.0, 3.5, 1.0], "q": [2.0, 4.0, 3.5, 8.0]})
    md = Metadata.detect(df).add_constraint(Positive("p")).add_constraint(Inequality("p", "q"))
    enc = TableEncoder(md).fit(df)
    e = enc.encode(df)
    rng = np.random.default_rng(1)
    wild = Encoded(rng.normal(0, 50, (200, e.num.shape[1])), np.zeros((200, 0), np.int64),
                   e.num_names, e.cat_names, e.cat_sizes)  # fmt: skip
    out = enc.decode(wild)
    assert out["n"].dtype == np.int64
    assert out["n"].between(1, 9).all()
    assert (out["p"] >= 0).all()
    assert (out["q"] >= out["p"]).all()


def test_unseen_category_and_unfitted_errors():
    df = pd.DataFrame({"c": ["a", "b", "a"], "v": [1.0, 2.0, 3.0]})
    enc = TableEncoder(Metadata.detect(df))
    with pytest.raises(RuntimeError, match="not fitted"):
        enc.encode(df)
    enc.fit(df)
    with pytest.raises(SynthDataError, match="'c'"):
        enc.encode(pd.DataFrame({"c": ["a", "zzz", "a"], "v": [1.0, 2.0, 3.0]}))
    with pytest.raises(ValueError, match="columns"):
        enc.decode(Encoded(np.zeros((2, 3)), np.zeros((2, 1), np.int64), [], [], []))


def test_integer_ids_and_string_ids_are_generated_distinct():
    df = pd.DataFrame({"user_id": [100, 101, 102, 103], "sku": ["A-7", "B-9", "C-1", "D-2"],
                       "v": [1.0, 2.0, 3.0, 4.0]})  # fmt: skip
    md = Metadata.detect(df)
    md.set("sku", kind="id")
    enc = TableEncoder(md).fit(df)
    e = enc.encode(df)
    big = Encoded(np.repeat(e.num, 5, axis=0), np.repeat(e.cat, 5, axis=0), e.num_names,
                  e.cat_names, e.cat_sizes)  # fmt: skip
    out = enc.decode(big)
    assert out["user_id"].is_unique
    assert out["user_id"].dtype == np.int64
    assert out["sku"].is_unique
