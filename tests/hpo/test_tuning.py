"""Learning-rate schedules against torch's schedulers, the range test on toy problems, the
optimiser / batch-size / curriculum spaces and samplers."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from airda.hpo.schedules import (
    LR_FAMILIES,
    batch_size_space,
    build_lr_scheduler,
    build_optimizer,
    lr_at,
    lr_range_test,
    lr_schedule_space,
    optimizer_space,
)
from airda.space import Space

CONFIGS = {
    "constant": {"lr": 0.1, "lr_schedule": "constant"},
    "step": {"lr": 0.1, "lr_schedule": "step", "step_frac": 0.25, "step_gamma": 0.3},
    "cosine": {"lr": 0.2, "lr_schedule": "cosine", "min_lr_frac": 0.05},
    "onecycle": {"lr": 0.5, "lr_schedule": "onecycle", "pct_start": 0.3, "onecycle_div": 25.0},
    "warmup_cosine": {
        "lr": 0.3,
        "lr_schedule": "warmup_cosine",
        "min_lr_frac": 0.01,
        "warmup_frac": 0.1,
    },
}


# OneCycleLR needs at least one step in each phase: no single-step onecycle.
@pytest.mark.parametrize(
    ("family", "total"),
    [(f, n) for f in LR_FAMILIES for n in (1, 7, 40) if not (f == "onecycle" and n == 1)],
)
def test_lr_at_matches_torch(family, total):
    torch = pytest.importorskip("torch")
    config = CONFIGS[family]
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = build_lr_scheduler(opt, config, total)
    for t in range(total):
        assert opt.param_groups[0]["lr"] == pytest.approx(lr_at(config, t, total), rel=1e-9), t
        opt.step()
        sched.step()


def test_closed_forms_at_chosen_steps():
    step = CONFIGS["step"]  # step size round(0.25 * 40) = 10
    assert lr_at(step, 9, 40) == pytest.approx(0.1)
    assert lr_at(step, 10, 40) == pytest.approx(0.03)
    assert lr_at(step, 35, 40) == pytest.approx(0.1 * 0.3**3)
    cos = CONFIGS["cosine"]
    assert lr_at(cos, 0, 40) == pytest.approx(0.2)
    assert lr_at(cos, 20, 40) == pytest.approx((0.2 + 0.01) / 2)
    assert lr_at(cos, 40, 40) == pytest.approx(0.01)
    wc = CONFIGS["warmup_cosine"]  # 4 warm-up steps of 40
    assert [lr_at(wc, t, 40) for t in range(4)] == pytest.approx([0.075, 0.15, 0.225, 0.3])
    assert lr_at(wc, 22, 40) == pytest.approx((0.3 + 0.003) / 2)
    oc = CONFIGS["onecycle"]
    assert lr_at(oc, 0, 40) == pytest.approx(0.5 / 25)
    assert lr_at(oc, 11, 40) == pytest.approx(0.5)  # end of the rise: 0.3 * 40 - 1
    assert lr_at(oc, 39, 40) == pytest.approx(0.5 / 25 / 1e4)
    with pytest.raises(ValueError, match="needs parameter"):
        lr_at({"lr": 0.1, "lr_schedule": "step"}, 0, 10)
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        lr_at({"lr": 0.1, "lr_schedule": "wavy"}, 0, 10)


def test_spaces_are_conditional_and_sample_valid_configs():
    space = Space(lr_schedule_space() | optimizer_space() | batch_size_space())
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        c = space.sample(rng)
        assert space.validate(c) == c
        seen.add(c["lr_schedule"])
        assert ("momentum" in c) == (c["optimizer"] == "sgd")
        assert ("warmup_frac" in c) == (c["lr_schedule"] == "warmup_cosine")
        assert lr_at(c, 3, 10) > 0
    assert seen == set(LR_FAMILIES)
    with pytest.raises(ValueError, match="unknown schedule families"):
        lr_schedule_space(families=("wavy",))
    with pytest.raises(ValueError, match="unknown optimisers"):
        optimizer_space(("lion",))
    with pytest.raises(ValueError, match="batch sizes"):
        batch_size_space((0,))


def test_build_optimizer():
    torch = pytest.importorskip("torch")
    p = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer(p, {"optimizer": "sgd", "lr": 0.1, "momentum": 0.5, "weight_decay": 0})
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[0]["momentum"] == 0.5
    assert isinstance(build_optimizer(p, {"optimizer": "adamw", "lr": 1e-3}), torch.optim.AdamW)


@pytest.mark.parametrize("curvature", [1.0, 100.0, 1e4])
def test_lr_range_test_finds_the_order_of_magnitude(curvature):
    """Least squares with largest Hessian eigenvalue `curvature`: plain gradient descent
    diverges above 2 / curvature; the best constant rate is about 1 / curvature, and the
    suggestion lies within a factor of fifty below the divergence limit."""
    rng = np.random.default_rng(0)
    d = 5
    eig = curvature * np.array([1.0, 0.8, 0.6, 0.5, 0.4])
    x_true = rng.normal(size=d)
    w = np.zeros(d)

    def step(lr):
        nonlocal w
        g = eig * (w - x_true) + rng.normal(scale=0.01, size=d) * math.sqrt(curvature)
        loss = 0.5 * float(np.sum(eig * (w - x_true) ** 2))
        w = w - lr * g
        return loss

    result = lr_range_test(step, min_lr=1e-8, max_lr=100.0, num_steps=300)
    limit = 2.0 / curvature
    assert limit / 50 < result.suggestion < limit
    assert result.diverged_at is not None
    assert result.steepest < result.diverged_at


def test_lr_range_test_on_a_torch_model():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)

    def step(lr):
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    result = lr_range_test(step, min_lr=1e-6, max_lr=10.0, num_steps=200)
    # the inputs are standard normal: the Hessian of the MSE is ~2I, GD diverges near lr 1.
    assert 1e-2 < result.suggestion < 1.0


def test_lr_range_test_errors():
    with pytest.raises(ValueError, match="min_lr < max_lr"):
        lr_range_test(lambda lr: 1.0, min_lr=1.0, max_lr=0.1)
    with pytest.raises(ValueError, match="diverged after"):
        lr_range_test(lambda lr: math.nan, min_lr=1e-3, max_lr=1.0)


def test_import_airda_hpo_is_light():
    probe = "import sys, airda.hpo; print('torch' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]


def test_pacing_functions_at_chosen_steps():
    from airda.hpo.curriculum import pacing_fraction

    base = {"curriculum": "easy_to_hard", "pacing_start": 0.25, "pacing_ramp": 0.5}
    total = 20  # ramp over 10 steps
    at = {
        "linear": [0.25, 0.625, 1.0, 1.0],
        "root": [0.25, math.sqrt(0.0625 + 0.9375 * 0.5), 1.0, 1.0],
        "exponential": [0.25, 0.5, 1.0, 1.0],
        "step": [0.25, 0.25 + 0.75 * 2 / 4, 1.0, 1.0],
    }
    for pacing, want in at.items():
        got = [pacing_fraction(base | {"pacing": pacing}, t, total) for t in (0, 5, 10, 15)]
        assert got == pytest.approx(want), pacing
    assert pacing_fraction({"curriculum": "none"}, 0, 10) == 1.0
    with pytest.raises(ValueError, match="needs"):
        pacing_fraction({"curriculum": "easy_to_hard"}, 0, 10)


def test_curriculum_orders_and_batches():
    from airda.hpo.curriculum import CurriculumSampler, curriculum_space

    rng = np.random.default_rng(1)
    difficulty = rng.random(200)
    easiest = set(np.argsort(difficulty)[:40].tolist())
    hardest = set(np.argsort(difficulty)[-40:].tolist())
    cfg = {"pacing": "linear", "pacing_start": 0.2, "pacing_ramp": 1.0}
    e2h = CurriculumSampler(difficulty, cfg | {"curriculum": "easy_to_hard"}, 10, seed=3)
    h2e = CurriculumSampler(difficulty, cfg | {"curriculum": "hard_to_easy"}, 10, seed=3)
    none = CurriculumSampler(difficulty, {"curriculum": "none"}, 10, seed=3)
    assert set(e2h.batch(0, 32).tolist()) <= easiest
    assert set(h2e.batch(0, 32).tolist()) <= hardest
    assert len(e2h.available(0)) == 40
    assert len(e2h.available(10)) == 200
    assert len(none.available(0)) == 200
    assert sorted(e2h.epoch(10).tolist()) == list(range(200))
    assert np.array_equal(e2h.batch(4, 16), e2h.batch(4, 16))  # a function of (seed, step)
    rp = CurriculumSampler(difficulty, cfg | {"curriculum": "random_paced"}, 10, seed=3)
    assert not set(rp.available(0).tolist()) <= easiest
    space = Space(curriculum_space())
    for _ in range(50):
        c = space.sample(rng)
        assert ("pacing" in c) == (c["curriculum"] != "none")
        CurriculumSampler(difficulty, c, 10).batch(0, 8)
    with pytest.raises(ValueError, match="NaN"):
        CurriculumSampler([0.0, math.nan], {"curriculum": "none"}, 10)
