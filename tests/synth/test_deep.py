"""TVAE (airda.synth._deep) and its mode-specific normalisation (airda.synth._gmm): tiny tables,
few epochs."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
torch = pytest.importorskip("torch")

from airda.synth import Metadata, SynthDataError, Synthesizer, make  # noqa: E402
from airda.synth._deep import TVAE, TVAEModel  # noqa: E402
from airda.synth._gmm import ModeNormalizer, VariationalGMM1D  # noqa: E402

FAST = {
    "epochs": 20,
    "batch_size": 64,
    "latent_dim": 8,
    "encoder_dims": (32,),
    "decoder_dims": (32,),
}


def _bimodal(n: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = np.where(rng.random(n) < 0.5, rng.normal(-5, 0.5, n), rng.normal(5, 0.5, n))
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 7, n),
            "c": rng.choice(["u", "v", "w"], n),
            "flag": rng.random(n) < 0.3,
            "label": rng.choice(["common", "rare"], n, p=[0.9, 0.1]),
        }
    )


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _bimodal()


@pytest.fixture(scope="module")
def fitted(table: pd.DataFrame) -> TVAE:
    return TVAE(seed=0, **FAST).fit(table, Metadata.detect(table, target="label"))


# ---------------------------------------------------------------- the mixture


def test_gmm_finds_the_two_modes_and_prunes_the_rest():
    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(-3, 0.5, 3000), rng.normal(4, 1.0, 1000)]
    g = VariationalGMM1D(n_components=10).fit(x)
    assert g.weights_.sum() == pytest.approx(1.0)
    # Mass within half a unit of each true mode, and nothing of note between them.
    near_a = g.weights_[np.abs(g.means_ + 3) < 0.5].sum()
    near_b = g.weights_[np.abs(g.means_ - 4) < 0.5].sum()
    assert near_a == pytest.approx(0.75, abs=0.03)
    assert near_b == pytest.approx(0.25, abs=0.03)
    # The fitted density is close to the true one (average log-likelihood).
    true = np.log(
        0.75 * np.exp(-0.5 * ((x + 3) / 0.5) ** 2) / (0.5 * np.sqrt(2 * np.pi))
        + 0.25 * np.exp(-0.5 * (x - 4) ** 2) / np.sqrt(2 * np.pi)
    ).mean()
    assert g.score_samples(x).mean() > true - 0.02


def test_gmm_rejects_bad_input():
    with pytest.raises(ValueError, match="finite"):
        VariationalGMM1D().fit(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="no values"):
        VariationalGMM1D().fit(np.array([]))


def test_mode_normalizer_inverts_and_handles_constant_and_discrete_columns():
    rng = np.random.default_rng(2)
    num = np.c_[rng.normal(size=500), np.full(500, 3.0), rng.integers(0, 3, 500).astype(float)]
    norm = ModeNormalizer(max_rows=200).fit(num, rng)
    alpha, modes = norm.transform(num, rng)
    assert alpha.shape == modes.shape == num.shape
    assert np.all(np.abs(alpha) <= 0.99)
    assert all(m.min() >= 0 and m.max() < k for m, k in zip(modes.T, norm.n_modes, strict=True))
    inside = np.abs(alpha) < 0.99
    np.testing.assert_allclose(norm.inverse(alpha, modes)[inside], num[inside], atol=1e-9)
    assert norm.n_modes[1] == 1  # a constant column is one mode
    assert norm.n_modes[2] <= 3  # three values need at most three modes


# ---------------------------------------------------------------- the synthesizer


def test_registered_and_hyperparameters_recorded():
    model = make("tvae", seed=3, epochs=7)
    assert isinstance(model, TVAE)
    hp = model.hyperparameters
    assert hp["epochs"] == 7
    assert hp["seed"] == 3
    assert hp["condition_column"] == "auto"


def test_sample_has_the_table_columns_and_dtypes(fitted: TVAE, table: pd.DataFrame):
    out = fitted.sample(50)
    assert list(out.columns) == list(table.columns)
    assert out.dtypes.to_dict() == table.dtypes.to_dict()
    assert len(out) == 50
    assert set(out["c"]) <= set(table["c"])
    assert set(out["label"]) <= set(table["label"])
    assert fitted.epochs_run == FAST["epochs"]
    assert len(fitted.loss_history) == FAST["epochs"]
    assert fitted.loss_history[-1] < fitted.loss_history[0]
    assert fitted.condition_column_ == "label"  # the target, by default
    assert fitted.device_.startswith("cuda" if torch.cuda.is_available() else "cpu")


def test_same_seed_same_samples(table: pd.DataFrame):
    md = Metadata.detect(table, target="label")
    a = TVAE(seed=5, **FAST).fit(table, md)
    b = TVAE(seed=5, **FAST).fit(table, md)
    pd.testing.assert_frame_equal(a.sample(40), b.sample(40))
    pd.testing.assert_frame_equal(a.sample(40, seed=9), b.sample(40, seed=9))
    assert not a.sample(40, seed=1).equals(a.sample(40, seed=2))
    c = TVAE(seed=6, **FAST).fit(table, md)
    assert not c.sample(40, seed=9).equals(a.sample(40, seed=9))


def test_learns_a_bimodal_column_better_than_noise(fitted: TVAE, table: pd.DataFrame):
    x = fitted.sample(1000, seed=0)["x"].to_numpy()
    # Both modes recovered in about the right proportion, little mass in the gap between them.
    left, right, gap = (x < -3).mean(), (x > 3).mean(), (np.abs(x) < 2.5).mean()
    assert left == pytest.approx((table["x"] < 0).mean(), abs=0.1)
    assert right == pytest.approx((table["x"] > 0).mean(), abs=0.1)
    assert gap < 0.03
    # Noise with the same mean and spread would put about 1/3 of its mass in that gap.
    noise = np.random.default_rng(0).normal(table["x"].mean(), table["x"].std(), 1000)
    assert (np.abs(noise) < 2.5).mean() > 10 * gap


def test_class_conditional_sampling_is_exact(fitted: TVAE):
    out = fitted.sample(30, conditions={"label": "rare"})
    assert (out["label"] == "rare").all()
    labels = ["rare", "common"] * 15
    out = fitted.sample(30, conditions=pd.DataFrame({"label": labels}))
    assert out["label"].tolist() == labels
    # Without conditions the label keeps about its training frequency.
    share = (fitted.sample(2000, seed=1)["label"] == "rare").mean()
    assert share == pytest.approx(0.1, abs=0.03)


def test_conditions_the_model_cannot_honour_raise(fitted: TVAE):
    with pytest.raises(SynthDataError, match=r"'c'.*conditions on 'label' only"):
        fitted.sample(5, conditions={"c": "u"})
    with pytest.raises(SynthDataError, match="numerical column 'x'"):
        fitted.sample(5, conditions={"x": 1.0})
    with pytest.raises(SynthDataError):
        fitted.sample(5, conditions={"label": "never-seen"})


def test_condition_column_choice(table: pd.DataFrame):
    model = TVAE(seed=0, condition_column="c", **FAST).fit(table)  # no target in the metadata
    assert model.condition_column_ == "c"
    assert (model.sample(10, conditions={"c": "w"})["c"] == "w").all()
    plain = TVAE(seed=0, condition_column=None, **FAST).fit(
        table, Metadata.detect(table, target="label")
    )
    assert plain.condition_column_ is None
    with pytest.raises(SynthDataError, match="fitted without a condition column"):
        plain.sample(5, conditions={"label": "rare"})
    with pytest.raises(SynthDataError, match=r"'x'.*categorical or boolean.*numerical"):
        TVAE(seed=0, condition_column="x", **FAST).fit(table)
    with pytest.raises(SynthDataError, match=r"'nope'.*not a column"):
        TVAE(seed=0, condition_column="nope", **FAST).fit(table)


def test_save_load_round_trip(fitted: TVAE, tmp_path):
    path = fitted.save(tmp_path / "tvae.synth")
    loaded = Synthesizer.load(path)
    assert isinstance(loaded, TVAE)
    assert loaded.hyperparameters == fitted.hyperparameters
    pd.testing.assert_frame_equal(loaded.sample(25, seed=4), fitted.sample(25, seed=4))
    out = loaded.sample(8, conditions={"label": "rare"})
    assert (out["label"] == "rare").all()


def test_max_seconds_stops_training(table: pd.DataFrame):
    model = TVAE(seed=0, **{**FAST, "epochs": 100_000}, max_seconds=0.3).fit(table)
    assert 1 <= model.epochs_run < 100_000
    assert model.fit_seconds < 10


def test_argmax_sampling_and_threads_setting_restored(table: pd.DataFrame):
    before = torch.get_num_threads()
    model = TVAE(seed=0, discrete_sampling="argmax", cpu_threads=1, **FAST).fit(table)
    assert torch.get_num_threads() == before
    assert len(model.sample(10)) == 10


@pytest.mark.parametrize(
    ("hp", "match"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"encoder_dims": (32, 0)}, "encoder_dims"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"max_seconds": 0}, "max_seconds"),
        ({"discrete_sampling": "greedy"}, "discrete_sampling"),
        ({"cpu_threads": 0}, "cpu_threads"),
    ],
)
def test_bad_hyperparameters_are_named(hp, match):
    with pytest.raises(ValueError, match=match):
        TVAE(**hp)


def test_unknown_hyperparameter_and_bad_condition_type():
    with pytest.raises(TypeError, match="epoch"):
        TVAE(epoch=3)
    with pytest.raises(TypeError, match="condition_column"):
        TVAE(condition_column=3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error(table: pd.DataFrame):
    with pytest.raises(ValueError, match="CUDA is not available"):
        TVAE(device="cuda", **FAST).fit(table)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_on_the_gpu_and_loads_anywhere(table: pd.DataFrame, tmp_path):
    model = TVAE(seed=0, device="cuda", **FAST).fit(table)
    assert model.device_.startswith("cuda")
    loaded = Synthesizer.load(model.save(tmp_path / "gpu.synth"))
    pd.testing.assert_frame_equal(loaded.sample(20, seed=1), model.sample(20, seed=1))


# ---------------------------------------------------------------- the array core


def test_core_on_arrays_without_categories_or_numbers():
    rng = np.random.default_rng(0)
    num = rng.normal(size=(80, 2))
    hp = {k: v for k, v in FAST.items()}
    only_num = TVAEModel(seed=0, **hp).fit(num, np.empty((80, 0), np.int64), [])
    n_out, c_out = only_num.sample(15, np.random.default_rng(1))
    assert n_out.shape == (15, 2)
    assert c_out.shape == (15, 0)
    cat = rng.integers(0, 3, (80, 2))
    only_cat = TVAEModel(seed=0, cond_index=1, **hp).fit(np.empty((80, 0)), cat, [3, 3])
    n_out, c_out = only_cat.sample(15, np.random.default_rng(1), np.full(15, 2))
    assert n_out.shape == (15, 0)
    assert c_out.dtype == np.int64
    assert (c_out[:, 1] == 2).all()
    # The condition column alone: nothing to learn, still samples exactly.
    cond_only = TVAEModel(seed=0, cond_index=0, **hp).fit(np.empty((80, 0)), cat[:, :1], [3])
    assert (cond_only.sample(5, np.random.default_rng(0), np.zeros(5))[1] == 0).all()
    with pytest.raises(ValueError, match="codes outside"):
        TVAEModel(**hp).fit(num, np.full((80, 1), 5), [3])
    with pytest.raises(ValueError, match="NaN"):
        TVAEModel(**hp).fit(np.full((80, 1), np.nan), np.empty((80, 0), np.int64), [])


def test_docstring_example_runs():
    import doctest

    import airda.synth._deep as deep

    result = doctest.testmod(deep, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0
