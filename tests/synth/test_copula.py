"""GaussianCopula and the Synthesizer interface: seeds, save/load, conditions, bad input,
marginals, the class-conditional mixture, the registry."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="airda.synth needs the synth extra (pandas)")
pytest.importorskip("scipy", reason="the Gaussian copula needs the synth extra (scipy)")

from airda import synth  # noqa: E402
from airda.synth import GaussianCopula, Metadata, SynthDataError, Synthesizer  # noqa: E402


def _table(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    label = np.where(x + rng.normal(0, 0.5, n) > 0, "yes", "no")
    v = (2 * x + rng.normal(0, 0.3, n)).round(2)
    v[rng.random(n) < 0.25] = np.nan
    return pd.DataFrame(
        {
            "row_id": np.arange(n) + 1000,
            "x": x,
            "v": v,
            "k": rng.poisson(3, n),
            "grp": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
            "ok": rng.random(n) < 0.7,
            "when": pd.Timestamp("2023-05-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
            "const": 7,
            "label": label,
        }
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, GaussianCopula]:
    df = _table()
    return df, GaussianCopula(seed=0).fit(df, Metadata.detect(df, target="label"))


def test_sample_keeps_columns_dtypes_ranges_and_rates(fitted):
    df, model = fitted
    s = model.sample(2000, seed=1)
    assert list(s.columns) == list(df.columns)
    assert s.dtypes.equals(df.dtypes)
    assert s["row_id"].is_unique
    assert s["k"].between(df.k.min(), df.k.max()).all()
    assert (s["const"] == 7).all()
    assert s["when"].between(df.when.min(), df.when.max()).all()
    assert (s["when"] == s["when"].dt.normalize()).all()  # whole days, like the data
    assert s["v"].isna().mean() == pytest.approx(df.v.isna().mean(), abs=0.05)
    assert set(s["grp"]) <= set(df.grp)
    assert s["grp"].value_counts(normalize=True)["a"] > 0.45
    assert np.corrcoef(s.x[s.v.notna()], s.v[s.v.notna()])[0, 1] > 0.8
    assert model.fit_seconds is not None
    assert model.fit_seconds > 0


def test_same_seed_same_samples_and_sequence(fitted):
    df, model = fitted
    a = model.sample(50, seed=7)
    pd.testing.assert_frame_equal(a, model.sample(50, seed=7))
    other = GaussianCopula(seed=0).fit(df, Metadata.detect(df, target="label"))
    pd.testing.assert_frame_equal(other.sample(30), GaussianCopula(seed=0).fit(
        df, Metadata.detect(df, target="label")).sample(30))  # fmt: skip
    first, second = other.sample(30), other.sample(30)
    assert not first.equals(second)  # successive unseeded draws differ
    assert (
        not GaussianCopula(seed=1)
        .fit(df)
        .sample(30, seed=3)
        .equals(GaussianCopula(seed=2).fit(df).sample(30, seed=3))
    )


def test_save_load_gives_identical_samples(fitted, tmp_path):
    _df, model = fitted
    path = model.save(tmp_path / "m.airda")
    back = Synthesizer.load(path)
    assert isinstance(back, GaussianCopula)
    assert back.hyperparameters == model.hyperparameters
    assert back.metadata.to_dict() == model.metadata.to_dict()
    pd.testing.assert_frame_equal(back.sample(40, seed=5), model.sample(40, seed=5))
    pd.testing.assert_frame_equal(back.sample(40), Synthesizer.load(path).sample(40))
    (tmp_path / "bad").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not an airda synthesizer"):
        Synthesizer.load(tmp_path / "bad")


def test_conditions_are_respected_exactly(fitted):
    _df, model = fitted
    s = model.sample(60, conditions={"grp": "c", "ok": False}, seed=2)
    assert (s.grp == "c").all()
    assert (~s.ok).all()
    s = model.sample(60, conditions={"label": "yes"}, seed=2)
    assert (s.label == "yes").all()
    assert s.x.mean() > 0.2
    hi = model.sample(300, conditions={"x": 1.5}, seed=3)
    lo = model.sample(300, conditions={"x": -1.5}, seed=3)
    assert (hi.x == 1.5).all()
    assert hi.v.mean() > lo.v.mean() + 2
    assert (hi.label == "yes").mean() > (lo.label == "yes").mean() + 0.5
    per_row = pd.DataFrame({"grp": ["a", "b", "c", "a"], "k": [0, 2, 4, 6]})
    s = model.sample(4, conditions=per_row, seed=4)
    assert s.grp.tolist() == ["a", "b", "c", "a"]
    assert s.k.tolist() == [0, 2, 4, 6]
    s = model.sample(5, conditions={"when": "2023-06-01", "grp": "b", "label": "no"})
    assert (s.when == pd.Timestamp("2023-06-01")).all()
    assert (s.label == "no").all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "positive int"),
        ({"n": 2.5}, "positive int"),
        ({"n": True}, "positive int"),
        ({"n": 3, "conditions": {"nope": 1}}, "'nope'"),
        ({"n": 3, "conditions": {"grp": "zzz"}}, "'grp'"),
        ({"n": 3, "conditions": {"row_id": 5}}, "'row_id'"),
        ({"n": 3, "conditions": pd.DataFrame({"grp": ["a"]})}, "rows"),
        ({"n": 3, "conditions": [1, 2]}, "dict or a DataFrame"),
        ({"n": 3, "conditions": {"const": 8}}, "'const'"),
        ({"n": 3, "conditions": {"k": None}}, "'k'"),
        ({"n": 3, "conditions": {"k": 2.5}}, "integers"),
        ({"n": 3, "conditions": {"when": "soon"}}, "'when'"),
    ],
)
def test_bad_sample_arguments(fitted, kwargs, match):
    _, model = fitted
    n = kwargs.pop("n")
    with pytest.raises(SynthDataError, match=match):
        model.sample(n, **kwargs)


@pytest.mark.parametrize(
    ("df", "column"),
    [
        (pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=float)}), "a"),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [np.nan] * 3}), "b"),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "m": [1, "x", 2.5]}), "m"),
    ],
)
def test_bad_tables_are_refused_naming_the_column(df, column):
    with pytest.raises(SynthDataError, match=repr(column)):
        GaussianCopula().fit(df)


def test_constant_and_single_row_tables():
    s = GaussianCopula(seed=0).fit(pd.DataFrame({"a": [3, 3, 3], "b": ["x"] * 3})).sample(4)
    assert s.a.tolist() == [3] * 4
    assert s.b.tolist() == ["x"] * 4
    one = GaussianCopula(seed=0).fit(pd.DataFrame({"a": [1.5], "b": ["z"]})).sample(3)
    assert one.a.tolist() == [1.5] * 3


def test_not_fitted_and_bad_hyperparameters():
    with pytest.raises(RuntimeError, match="not fitted"):
        GaussianCopula().sample(3)
    with pytest.raises(TypeError, match="unknown hyperparameters"):
        GaussianCopula(depth=3)
    with pytest.raises(ValueError, match="marginals"):
        GaussianCopula(marginals="cauchy")
    with pytest.raises(ValueError, match="shrinkage"):
        GaussianCopula(shrinkage=2.0)
    with pytest.raises(TypeError, match="seed"):
        GaussianCopula(seed="0")


def test_marginals_chosen_by_fit():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"normal": rng.normal(10, 2, 3000), "bimodal": np.r_[rng.normal(
        0, 1, 1500), rng.normal(8, 1, 1500)], "uniform": rng.uniform(0, 1, 3000)})  # fmt: skip
    model = GaussianCopula(seed=0).fit(df)
    names = [m.name for m in model._components[0].marginals]
    assert names[0] in ("normal", "truncnorm")
    assert names[1] in ("kde", "empirical")
    assert names[2] in ("uniform", "beta")
    s = model.sample(3000, seed=0)
    assert ((s.bimodal > 2) & (s.bimodal < 6)).mean() < 0.08
    for how in ("empirical", "kde", "parametric", "gamma"):
        GaussianCopula(seed=0, marginals=how).fit(df).sample(10)


def test_mixture_per_class_and_by_none(fitted):
    df, model = fitted
    assert len(model._components) == 2
    one = GaussianCopula(seed=0, by=None).fit(df, Metadata.detect(df, target="label"))
    assert len(one._components) == 1
    with pytest.raises(SynthDataError, match="'x'"):
        GaussianCopula(by="x").fit(df)


def test_registry_and_lazy_import():
    assert isinstance(synth.make("copula", seed=3), GaussianCopula)
    with pytest.raises(ValueError, match="unknown synthesizer"):
        synth.make("gan")
    code = "import sys, airda.synth; print('pandas' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_numerical_target_bins_and_conditions_on_it():
    rng = np.random.default_rng(4)
    n = 1200
    x = rng.uniform(0, 4, n)
    df = pd.DataFrame({"x": x, "c": rng.choice(["u", "v"], n), "y": x**2 + rng.normal(0, 0.2, n)})
    md = Metadata.detect(df, target="y")
    model = GaussianCopula(seed=0, min_class_rows=4).fit(df, md)
    assert len(model._components) == 6  # n // (50 * 4) bins
    s = model.sample(400, seed=0)
    assert np.corrcoef(s.x**2, s.y)[0, 1] > 0.9
    hi = model.sample(200, conditions={"y": 12.0}, seed=1)
    assert (hi.y == 12.0).all()
    assert hi.x.mean() > 3.0
    assert len(GaussianCopula(seed=0, target_bins=1).fit(df, md)._components) == 1


def test_several_categorical_conditions_use_the_truncated_gibbs_draw():
    rng = np.random.default_rng(5)
    n = 400
    a = rng.choice(["p", "q"], n)
    b = np.where(rng.random(n) < 0.8, a, np.where(a == "p", "q", "p"))
    x = np.where(b == "p", 0.0, 3.0) + rng.normal(0, 0.5, n)
    df = pd.DataFrame({"a": a, "b": b, "c": rng.choice(["r", "s", "t"], n), "x": x})
    model = GaussianCopula(seed=0).fit(df)
    per_row = pd.DataFrame({"a": ["p"] * 100 + ["q"] * 100, "c": ["r", "s"] * 100})
    s = model.sample(200, conditions=per_row, seed=0)
    assert (s.a == per_row.a).all()
    assert (s.c == per_row.c).all()
    assert (s.b[:100] == "p").mean() > 0.6
    assert (s.b[100:] == "q").mean() > 0.6


def test_dependence_between_categories_is_not_attenuated():
    rng = np.random.default_rng(5)
    n = 1500
    a = rng.choice(["p", "q"], n)
    b = np.where(rng.random(n) < 0.85, a, np.where(a == "p", "q", "p"))
    k = np.where(a == "p", rng.poisson(2, n), rng.poisson(5, n))
    df = pd.DataFrame({"a": a, "b": b, "k": k})
    s = GaussianCopula(seed=0, by=None).fit(df).sample(6000, seed=1)
    assert (s.a == s.b).mean() == pytest.approx((df.a == df.b).mean(), abs=0.04)
    data_r = np.corrcoef(df.k, df.a == "p")[0, 1]
    assert np.corrcoef(s.k, s.a == "p")[0, 1] == pytest.approx(data_r, abs=0.05)


class _Bootstrap(Synthesizer):
    """A minimal subclass: resamples encoded rows, then applies the conditions it is given."""

    defaults = {"keep": True}  # noqa: RUF012 - a class-level default table, as the base documents
    numeric_conditions = False

    def _fit(self, encoded):
        self._rows = encoded

    def _sample(self, n, cond_cat, cond_num, rng):
        from airda.synth import Encoded

        idx = rng.integers(0, len(self._rows), n)
        cat = self._rows.cat[idx].copy()
        for j, codes in cond_cat.items():
            cat[:, j] = codes
        e = self._rows
        return Encoded(e.num[idx], cat, e.num_names, e.cat_names, e.cat_sizes, e.num_integer)


def test_the_base_class_contract_for_subclasses(tmp_path):
    df = _table(40)
    model = _Bootstrap(seed=2).fit(df)
    assert model.hyperparameters == {"keep": True, "seed": 2}
    s = model.sample(25, conditions={"grp": "b"}, seed=0)
    assert (s.grp == "b").all()
    assert s.dtypes.equals(df.dtypes)
    with pytest.raises(SynthDataError, match="cannot condition on the numerical column 'x'"):
        model.sample(3, conditions={"x": 0.0})
    back = Synthesizer.load(model.save(tmp_path / "b.airda"))
    assert isinstance(back, _Bootstrap)
    pd.testing.assert_frame_equal(back.sample(10, seed=1), model.sample(10, seed=1))
    with pytest.raises(ValueError, match="not a GaussianCopula"):
        GaussianCopula.load(tmp_path / "b.airda")
