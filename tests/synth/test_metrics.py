"""airda.synth's metrics: column shapes and pair trends (checked against SDMetrics when it is
installed), detection, ML utility with its interval, and DCR/NNDR privacy, on tiny tables."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas", reason="airda.synth's metrics need pandas (the synth extra)")
pytest.importorskip("sklearn", reason="detection and utility need scikit-learn (the synth extra)")

from airda.synth import _metrics as M  # noqa: E402


def _table(n: int = 240, seed: int = 0, missing: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    df = pd.DataFrame(
        {
            "x": x,
            "z": 2.0 * x + rng.normal(0.0, 0.5, n),
            "k": rng.integers(0, 6, n),
            "c": np.where(x > 0, rng.choice(["a", "b"], n), rng.choice(["c", "d"], n)),
            "flag": rng.random(n) < 0.3,
            "when": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 400, n), "D"),
        }
    )
    df["label"] = np.where(x + 0.3 * rng.normal(size=n) > 0, "yes", "no")
    if missing:
        df.loc[rng.random(n) < 0.1, "x"] = np.nan
        df.loc[rng.random(n) < 0.1, "c"] = None
    return df


def _independent(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Every column shuffled on its own: the same marginals, no relation between columns."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: df[c].to_numpy()[rng.permutation(len(df))] for c in df.columns})


KINDS = {
    "x": "numerical",
    "z": "numerical",
    "k": "integer",
    "c": "categorical",
    "flag": "boolean",
    "when": "datetime",
    "label": "categorical",
}


# ---- column shapes --------------------------------------------------------------------------


def test_ks_complement_is_one_minus_scipys_statistic_with_ties_and_nan():
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    for n, m in [(1, 1), (7, 30), (50, 13), (200, 200)]:
        a = rng.integers(0, 5, n).astype(float)
        b = rng.normal(2.0, 1.5, m).round(1)
        a_nan = np.r_[a, np.nan]
        expected = 1.0 - ks_2samp(a, b).statistic
        assert M.ks_complement(a_nan, b) == pytest.approx(expected, abs=1e-12)
    assert math.isnan(M.ks_complement(np.array([np.nan]), np.array([1.0])))


def test_tv_complement_counts_unseen_categories_and_ignores_missing():
    real = pd.Series(["a", "a", "b", "b", None])
    syn = pd.Series(["a", "a", "a", "z"])
    # real: a .5, b .5; synthetic: a .75, z .25 -> TV = (.25 + .5 + .25) / 2 = .5
    assert M.tv_complement(real, syn) == pytest.approx(0.5)
    # 1 and 1.0 are the same value (a CSV round trip turns ints into floats)
    assert M.tv_complement(pd.Series([1, 2, 2]), pd.Series([1.0, 2.0, 2.0])) == 1.0


def test_copied_table_has_perfect_column_shapes_and_pair_trends():
    real = _table()
    score, details = M.column_shapes(real, real.sample(frac=1.0, random_state=2))
    assert score == 1.0
    assert set(details["column"]) == set(real.columns)
    assert details.set_index("column")["metric"].to_dict()["when"] == "KSComplement"
    pair, pdet = M.pair_trends(real, real.copy())
    assert pair == 1.0
    assert len(pdet) == 21


def test_shifted_column_scores_lower_and_names_the_column():
    real = _table(missing=False)
    syn = real.copy()
    syn["z"] = syn["z"] + 3.0
    score, details = M.column_shapes(real, syn, metadata=KINDS)
    by = details.set_index("column")["score"]
    assert by["z"] < 0.5
    assert by["x"] == 1.0
    assert score < 1.0


def test_independent_noise_gets_a_low_pair_trend_score_but_perfect_shapes():
    real = _table(400, missing=False)
    noise = _independent(real)
    shapes, _ = M.column_shapes(real, noise, metadata=KINDS)
    assert shapes == 1.0
    _score, details = M.pair_trends(real, noise, metadata=KINDS)
    xz = details[(details["column_1"] == "x") & (details["column_2"] == "z")].iloc[0]
    assert xz["metric"] == "CorrelationSimilarity"
    assert xz["real_correlation"] > 0.9
    assert abs(xz["synthetic_correlation"]) < 0.2
    assert xz["score"] < 0.6
    related = M.pair_trend_score(details, **M.SDMETRICS_THRESHOLDS)
    assert related < 0.7 < M.pair_trends(real, real.copy(), metadata=KINDS)[0]


def test_constant_and_all_missing_columns_give_nan_pairs_not_errors():
    real = _table(60, missing=False)[["x", "z", "c"]]
    real["const"] = 5.0
    real["empty"] = np.nan
    kinds = {"x": "numerical", "z": "numerical", "c": "categorical", "const": "numerical"}
    kinds["empty"] = "numerical"
    score, details = M.pair_trends(real, real.copy(), metadata=kinds)
    assert score == 1.0  # NaN pairs are left out of the mean
    bad = details[details["score"].isna()]
    assert {tuple(r) for r in bad[["column_1", "column_2"]].values} >= {("x", "const")}
    shapes, sd = M.column_shapes(real, real.copy(), metadata=kinds)
    assert shapes == 1.0
    assert math.isnan(sd.set_index("column")["score"]["empty"])


def _sdmetrics_scores(real: pd.DataFrame, syn: pd.DataFrame, kinds: dict[str, str]):
    from sdmetrics.reports import QualityReport
    from sdmetrics.reports.single_table._properties import ColumnPairTrends

    md = {
        "columns": {c: {"sdtype": "numerical" if k == "integer" else k} for c, k in kinds.items()}
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = QualityReport()
        report.generate({"t": real}, {"t": syn}, {"tables": {"t": md}}, verbose=False)
        props = report.get_properties().set_index("Property")["Score"]
        every_pair = ColumnPairTrends().get_score(real, syn, md)
    return props["Column Shapes"], every_pair, props["Column Pair Trends"]


@pytest.mark.parametrize("case", ["noisy", "independent"])
def test_agrees_with_sdmetrics_quality_report(case):
    pytest.importorskip("sdmetrics", reason="SDMetrics is a benchmark peer (the bench extra)")
    real = _table(300, seed=5)
    if case == "noisy":
        rng = np.random.default_rng(9)
        syn = _table(300, seed=6)
        syn["z"] = syn["z"] * 1.3 + 0.2
        syn.loc[rng.random(300) < 0.2, "c"] = "e"  # a category the real table lacks
    else:
        syn = _independent(real)
    shapes_ref, pairs_ref, related_ref = _sdmetrics_scores(real, syn, KINDS)
    shapes, _ = M.column_shapes(real, syn, metadata=KINDS)
    pairs, details = M.pair_trends(real, syn, metadata=KINDS)
    related = M.pair_trend_score(details, **M.SDMETRICS_THRESHOLDS)
    # The bar is 0.02; the computations are the same, so they agree to rounding.
    assert shapes == pytest.approx(shapes_ref, abs=1e-9)
    assert pairs == pytest.approx(pairs_ref, abs=1e-9)
    assert related == pytest.approx(related_ref, abs=1e-9)


# ---- encoding, detection ----------------------------------------------------------------------


def test_encoding_puts_different_categories_one_apart_and_flags_missing():
    real = pd.DataFrame({"x": [0.0, 2.0, np.nan, 4.0], "c": ["a", "b", "a", "a"]})
    enc = M.TableEncoding(["x", "c"], {"x": "numerical", "c": "categorical"}).fit(real)
    assert enc.width == 2 + 2  # x, x missing, c=a, c=b
    z = enc.transform(pd.DataFrame({"x": [2.0, 2.0, np.nan], "c": ["a", "b", "unseen"]}))
    assert np.linalg.norm(z[0] - z[1]) == pytest.approx(1.0)
    assert z[2, 1] == 1.0
    assert z[2, 0] == 0.0
    assert np.all(z[2, 2:] == 0.0)  # an unseen category matches none


def test_detection_scores_a_copy_high_and_a_shifted_table_low():
    real = _table(200, missing=False)
    same, det = M.detection(real, _table(200, seed=7, missing=False), models=["logistic"])
    assert same > 0.6
    assert list(det["model"]) == ["logistic"]
    shifted = real.copy()
    shifted["x"] = shifted["x"] + 4.0
    low, det = M.detection(real, shifted, models=["logistic", "gbm"], folds=2, seed=1)
    assert low < 0.1
    assert det["auc"].max() > 0.95


def test_detection_handles_missing_values_and_rejects_bad_settings():
    real = _table(90)
    score, _ = M.detection(real, _table(90, seed=4), models=["gbm"], folds=2)
    assert 0.0 <= score <= 1.0
    with pytest.raises(ValueError, match="unknown detection model 'svm'"):
        M.detection(real, real, models=["svm"])
    with pytest.raises(ValueError, match="folds"):
        M.detection(real, real, folds=1)


# ---- ML utility -------------------------------------------------------------------------------


def test_vectorised_metrics_match_sklearn():
    from sklearn.metrics import f1_score, r2_score, roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (3, 40))
    s = rng.integers(0, 5, (3, 40)).astype(float)  # many ties
    auc = M._auc_rows(y, s)
    assert auc == pytest.approx([roc_auc_score(y[i], s[i]) for i in range(3)])
    yc, pc = rng.integers(0, 3, (3, 30)), rng.integers(0, 4, (3, 30))
    f1 = M._f1_rows(yc, pc, 4)
    assert f1 == pytest.approx([f1_score(yc[i], pc[i], average="macro") for i in range(3)])
    yr, pr = rng.normal(size=(3, 25)), rng.normal(size=(3, 25))
    assert M._r2_rows(yr, pr) == pytest.approx([r2_score(yr[i], pr[i]) for i in range(3)])


def test_utility_of_a_copy_is_trtr_and_of_noise_is_worse():
    real = _table(300, missing=False)
    train, test = real.iloc[:200], real.iloc[200:]
    u = M.ml_utility(train, train.copy(), "label", test=test, trees=5, n_resamples=200)
    assert u.task == "classification"
    assert u.metric == "accuracy"
    assert u.difference == 0.0
    assert u.low == 0.0 == u.high
    assert u.test_source == "holdout"
    assert u.n_test == 100
    noise = _independent(train)
    bad = M.ml_utility(train, noise, "label", test=test, trees=5, n_resamples=500)
    assert bad.tstr < bad.trtr - 0.15
    assert bad.low <= bad.difference <= bad.high < 0.0


def test_utility_regression_and_auc_intervals_bracket_the_estimate():
    real = _table(200, missing=True)
    reg = M.ml_utility(real, _table(200, seed=3), "z", trees=5, n_resamples=200, metadata=KINDS)
    assert reg.task == "regression"
    assert reg.metric == "r2"
    assert reg.test_source == "split of real"
    assert reg.n_test == 60
    assert reg.low <= reg.difference <= reg.high
    auc = M.ml_utility(
        real, _table(200, seed=3), "label", metric="roc_auc", trees=5, n_resamples=200
    )
    assert 0.5 < auc.trtr <= 1.0
    assert auc.low <= auc.difference <= auc.high


def test_utility_errors_name_the_problem():
    real = _table(60)
    with pytest.raises(ValueError, match="target 'nope' is not a column of real"):
        M.ml_utility(real, real, "nope")
    with pytest.raises(ValueError, match="metric 'r2' does not fit a classification task"):
        M.ml_utility(real, real, "label", metric="r2")
    with pytest.raises(ValueError, match="task must be"):
        M.ml_utility(real, real, "label", task="ranking")
    with pytest.raises(ValueError, match="no feature column"):
        M.ml_utility(real[["label"]], real[["label"]], "label")


# ---- privacy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "m", "d", "k"), [(1, 1, 1, 1), (7, 5, 3, 2), (130, 70, 4, 3)])
def test_chunked_numpy_knn_is_exact_on_awkward_shapes(n, m, d, k):
    rng = np.random.default_rng(n + m)
    q, x = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    k = min(k, m)
    dist, idx = M._knn_numpy(q, x, k, chunk=16, block=9)
    full = np.sqrt(((q[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    want = np.sort(full, axis=1)[:, :k]
    assert np.sort(dist, axis=1) == pytest.approx(want, abs=1e-9)
    got = np.take_along_axis(full, idx, axis=1)
    assert np.sort(got, axis=1) == pytest.approx(want, abs=1e-12)


def test_knn_reads_exact_copies_as_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(1e3, 1.0, size=(50, 6))
    dist, idx = M.knn(x[::-1].copy(), x, 2)
    assert np.all(dist[:, 0] == 0.0)
    assert np.all(idx[:, 0] == np.arange(50)[::-1])
    assert np.all(dist[:, 1] > 0.0)


def test_privacy_warns_on_copied_rows_and_not_on_fresh_ones():
    real = _table(400, missing=True)
    train, hold = real.iloc[:250], real.iloc[250:]
    copied = M.privacy(train, train.sample(frac=1.0, random_state=1), holdout=hold)
    assert copied.copies == 1.0
    assert copied.share_closer == 1.0
    assert np.all(copied.dcr_synthetic == 0.0)
    assert np.all(copied.nndr_synthetic == 0.0)
    assert any("memorising" in w for w in copied.warnings)
    fresh = M.privacy(train, _table(250, seed=11), holdout=hold)
    assert fresh.copies == 0.0
    assert fresh.share_closer < 0.10
    assert not fresh.warnings
    assert list(fresh.summary["rows"]) == ["synthetic", "holdout"]
    assert fresh.summary.loc[0, "dcr_median"] > 0.0


def test_privacy_without_holdout_still_flags_copies():
    real = _table(80, missing=False)
    p = M.privacy(real, real.copy(), max_rows=30)
    assert p.share_closer is None
    assert p.dcr_holdout is None
    assert p.dcr_synthetic.size == 30
    assert "exact copies" in p.warnings[0]


# ---- inputs -------------------------------------------------------------------------------------


def test_bad_tables_get_clear_errors():
    real = _table(20)
    with pytest.raises(ValueError, match="no column in common"):
        M.column_shapes(real, pd.DataFrame({"other": [1, 2]}))
    with pytest.raises(ValueError, match=r"synthetic is empty \(0 rows\)"):
        M.pair_trends(real, real.iloc[:0])
    with pytest.raises(TypeError, match="real must be a pandas DataFrame, got list"):
        M.column_shapes([1, 2], real)
    with pytest.raises(ValueError, match="holdout lacks the column"):
        M.privacy(real, real, holdout=real[["x"]])
    with pytest.raises(ValueError, match="unknown kind 'text'"):
        M.column_shapes(real, real, metadata={"x": "text"})


def test_metadata_object_and_partial_dicts_set_the_kinds():
    real = _table(40)
    kinds = M.column_kinds(real, ["k", "x"], {"k": "categorical"})
    assert kinds == {"k": "categorical", "x": "numerical"}
    try:
        from airda.synth._metadata import Metadata
    except ImportError:  # pragma: no cover - engineer A's module not there
        return
    md = Metadata.detect(real)
    md.set("k", kind="categorical")
    _, details = M.column_shapes(real, real, metadata=md)
    assert details.set_index("column")["metric"]["k"] == "TVComplement"


def test_columns_the_synthesizers_refuse_still_get_a_kind():
    # An all-missing column and one mixing numbers with strings: Metadata.detect refuses the
    # table, the metrics fall back to a per-column guess and still score the rest.
    df = pd.DataFrame({"x": np.arange(40.0), "empty": np.nan, "mixed": [1, "a"] * 20})
    kinds = M.column_kinds(df, list(df.columns))
    assert kinds["mixed"] == "categorical"
    assert kinds["empty"] in M.CONTINUOUS
    score, details = M.column_shapes(df, df.copy())
    assert score == 1.0
    assert math.isnan(details.set_index("column")["score"]["empty"])
