"""Constraints hold on 100% of sampled rows, over several seeds, by construction."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="airda.synth needs the synth extra (pandas)")
pytest.importorskip("scipy", reason="the Gaussian copula needs the synth extra (scipy)")

from airda.synth import (  # noqa: E402
    FixedCombinations,
    GaussianCopula,
    Inequality,
    Metadata,
    Positive,
    Range,
    SynthDataError,
    Unique,
)


def _table(n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    start = rng.integers(0, 50, n)
    lo = rng.gamma(2.0, 1.0, n).round(2)
    country = rng.choice(["NO", "IT", "FR"], n)
    city = np.where(country == "NO", "Oslo", np.where(country == "IT", "Rome", "Paris"))
    return pd.DataFrame(
        {
            "start": start,
            "end": start + rng.integers(0, 5, n),  # end >= start, often equal
            "lo": lo,
            "hi": (lo + 0.01 + rng.exponential(1.0, n)).round(2),
            "pct": rng.uniform(0, 100, n).round(1),
            "amount": rng.exponential(5.0, n).round(2),
            "code": rng.permutation(1000)[:n],
            "country": country,
            "city": city,
            "opened": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, n), "D"),
            "closed": pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 60, n), "D"),
        }
    )


def _metadata(df: pd.DataFrame) -> Metadata:
    md = Metadata.detect(df)
    for c in (
        Inequality("start", "end"),
        Inequality("lo", "hi", strict=True),
        Range("pct", 0, 100),
        Positive("amount", strict=True),
        Unique("code"),
        FixedCombinations(["country", "city"]),
        Inequality("opened", "closed"),
        Range("opened", "2024-01-01", "2024-03-01"),
    ):
        md.add_constraint(c)
    return md


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_sampled_row_satisfies_every_constraint(seed):
    df = _table()
    md = _metadata(df)
    model = GaussianCopula(seed=seed).fit(df, md)
    pairs = set(zip(df.country, df.city, strict=True))
    for n in (1, 7, 300):
        s = model.sample(n, seed=seed * 100 + n)
        for c in md.constraints:
            assert c.is_satisfied(s, model.metadata).all(), (c, seed, n)
        assert set(zip(s.country, s.city, strict=True)) <= pairs
        assert s["code"].is_unique
        assert (s["hi"] > s["lo"]).all()
        assert (s["amount"] > 0).all()


def test_constraints_hold_under_conditions():
    df = _table()
    md = _metadata(df)
    model = GaussianCopula(seed=0).fit(df, md)
    s = model.sample(50, conditions={"country": "IT", "city": "Rome", "start": 10})
    assert (s["end"] >= 10).all()
    assert (s["start"] == 10).all()
    assert (s.city == "Rome").all()
    for c in md.constraints:
        assert c.is_satisfied(s, model.metadata).all(), c


def test_conditions_that_break_or_split_a_constraint_are_refused():
    df = _table()
    model = GaussianCopula(seed=0).fit(df, _metadata(df))
    with pytest.raises(SynthDataError, match="'city'"):
        model.sample(3, conditions={"country": "IT"})  # half of a fixed combination
    with pytest.raises(SynthDataError, match="'end'"):
        model.sample(3, conditions={"end": 4})  # high of an inequality without its low
    with pytest.raises(SynthDataError, match="'pct'"):
        model.sample(3, conditions={"pct": 120.0})  # outside Range


def test_data_that_breaks_a_constraint_is_refused_at_fit():
    df = _table()
    md = Metadata.detect(df).add_constraint(Range("pct", 0, 50))
    with pytest.raises(SynthDataError, match="'pct'"):
        GaussianCopula().fit(df, md)


def test_two_constraints_on_one_column_both_hold():
    df = _table()
    md = (
        Metadata.detect(df)
        .add_constraint(Range("amount", 0, 10))
        .add_constraint(Positive("amount", strict=True))
    )
    s = GaussianCopula(seed=5).fit(df[df.amount <= 10], md).sample(400)
    assert s["amount"].between(0, 10).all()
    assert (s["amount"] > 0).all()
