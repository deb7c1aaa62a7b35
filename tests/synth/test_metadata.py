"""Metadata: detection of kinds, overrides, JSON round trip, validation errors naming the column."""

from __future__ import annotations

import json

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="airda.synth needs the synth extra (pandas)")

from airda.synth import (  # noqa: E402
    Column,
    FixedCombinations,
    Inequality,
    Metadata,
    Positive,
    Range,
    SynthDataError,
    Unique,
)


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [10, 11, 12, 13, 14],
            "x": [0.5, 1.25, None, 3.0, 4.5],
            "n": [1, 2, 2, 3, 9],
            "city": ["Oslo", "Rome", None, "Oslo", "Rome"],
            "flag": [True, False, True, True, False],
            "day": ["2024-01-01", "2024-01-03", "2024-02-01", "2024-02-02", "2024-03-01"],
            "when": pd.to_datetime(["2024-01-01 10:00"] * 2 + ["2024-01-02 11:30"] * 3),
            "one": [7, 7, 7, 7, 7],
        }
    )


def test_detect_kinds_missing_and_ranges():
    md = Metadata.detect(_table())
    kinds = {k: c.kind for k, c in md.columns.items()}
    assert kinds == {
        "user_id": "id",
        "x": "numerical",
        "n": "integer",
        "city": "categorical",
        "flag": "boolean",
        "day": "datetime",
        "when": "datetime",
        "one": "integer",
    }
    assert md.columns["x"].missing == pytest.approx(0.2)
    assert md.columns["x"].decimals == 2
    assert md.columns["n"].low == 1
    assert md.columns["n"].high == 9
    assert md.columns["city"].categories == ["Oslo", "Rome"]
    assert md.columns["day"].datetime_format == "%Y-%m-%d"
    assert md.columns["day"].unit == "D"
    assert md.columns["when"].unit == "min"
    assert md.columns["one"].constant
    assert md.columns["one"].value == 7


def test_target_with_few_integers_is_categorical():
    df = pd.DataFrame({"a": np.arange(30.0), "y": [0, 1, 2] * 10})
    assert Metadata.detect(df, target="y").columns["y"].kind == "categorical"
    assert Metadata.detect(df).columns["y"].kind == "integer"


def test_json_round_trip_with_constraints():
    md = Metadata.detect(_table(), target="flag")
    md.add_constraint(Range("x", 0, 10)).add_constraint(Inequality("n", "x"))
    md.add_constraint(FixedCombinations(["city", "flag"])).add_constraint(Positive("n"))
    md.add_constraint(Unique("user_id"))
    d = json.loads(json.dumps(md.to_dict()))
    back = Metadata.from_dict(d)
    assert back.to_dict() == md.to_dict()
    assert back.constraints == md.constraints
    assert back.target == "flag"


def test_set_overrides_and_rejects_unknown():
    md = Metadata.detect(_table())
    col = md.set("n", kind="categorical")
    assert col.kind == "categorical"
    assert col.low is None
    with pytest.raises(SynthDataError, match="'nope'"):
        md.set("nope", kind="integer")
    with pytest.raises(SynthDataError, match="unknown kind"):
        md.set("x", kind="text")
    with pytest.raises(SynthDataError, match="unknown fields"):
        md.set("x", colour="red")
    assert isinstance(md.columns["x"], Column)


@pytest.mark.parametrize(
    ("df", "column"),
    [
        (pd.DataFrame({"a": [1.0, 2.0], "b": [None, None]}), "b"),
        (pd.DataFrame({"a": [1, "two", 3]}), "a"),
        (pd.DataFrame({"a": pd.Series([], dtype=float)}), "a"),
        (pd.DataFrame({"a": [1.0, np.inf]}), "a"),
    ],
)
def test_bad_tables_name_the_column(df, column):
    with pytest.raises(SynthDataError, match=repr(column)) as info:
        Metadata.detect(df)
    assert info.value.column == column


def test_no_columns_and_bad_target():
    with pytest.raises(SynthDataError, match="no columns"):
        Metadata.detect(pd.DataFrame())
    with pytest.raises(SynthDataError, match="'y'"):
        Metadata.detect(pd.DataFrame({"a": [1, 2]}), target="y")
    with pytest.raises(SynthDataError, match="DataFrame"):
        Metadata.detect([[1, 2]])  # type: ignore[arg-type]


def test_validate_finds_missing_extra_and_broken_constraints():
    df = _table()
    md = Metadata.detect(df)
    md.validate(df)
    with pytest.raises(SynthDataError, match="'x'"):
        md.validate(df.drop(columns=["x"]))
    with pytest.raises(SynthDataError, match="'extra'"):
        md.validate(df.assign(extra=1))
    md.add_constraint(Range("n", 0, 5))
    with pytest.raises(SynthDataError, match="'n'"):
        md.validate(df)  # n = 9 breaks it
    md2 = Metadata.detect(df)
    with pytest.raises(SynthDataError, match="'x'"):
        md2.validate(df.assign(x=["a", 1, 2, 3, 4]))


def test_constraint_checks_columns_and_kinds():
    md = Metadata.detect(_table())
    with pytest.raises(SynthDataError, match="'zz'"):
        md.add_constraint(Range("zz", 0, 1))
    with pytest.raises(SynthDataError, match="'city'"):
        md.add_constraint(Positive("city"))
    with pytest.raises(SynthDataError, match="'x'"):
        md.add_constraint(FixedCombinations(["city", "x"]))
    with pytest.raises(SynthDataError, match="'day'"):
        md.add_constraint(Inequality("n", "day"))
    with pytest.raises(SynthDataError, match="low must be below high"):
        md.add_constraint(Range("x", 5, 1))
    with pytest.raises(SynthDataError, match="unknown constraint"):
        Metadata.from_dict({"columns": [], "constraints": [{"type": "Nope"}]})


def test_numbers_as_strings_and_stray_strings():
    df = pd.DataFrame({"a": ["1", "2", "3", "4"]})
    assert Metadata.detect(df).columns["a"].kind == "integer"
    stray = pd.DataFrame({"a": [str(i) for i in range(30)] + ["unknown"]})
    with pytest.raises(SynthDataError, match="'a' mixes numbers and strings"):
        Metadata.detect(stray)
    md = Metadata.from_dict({"columns": [{"name": "a", "kind": "categorical"}]})
    md.validate(stray)  # set by the user: fine
