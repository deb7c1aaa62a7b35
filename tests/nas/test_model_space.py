"""User-defined model spaces: markers -> airda space -> concrete models; searched by a study."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import airda
from airda.nas import LayerChoice, ModelSpace, Repeat, ValueChoice


def net():
    return nn.Sequential(
        ValueChoice("width", [4, 8], lambda w: nn.Conv2d(3, w, 3, padding=1)),
        Repeat(
            lambda i: ValueChoice(
                "width",
                [4, 8],
                lambda w: LayerChoice(
                    {"conv3": nn.Conv2d(w, w, 3, padding=1), "skip": nn.Identity()},
                    label=f"op{i}",
                ),
            ),
            [0, 1, 3],
            label="depth",
        ),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        ValueChoice("width", [4, 8], lambda w: nn.Linear(w, 5)),
    )


def test_space_has_conditions_from_nesting():
    ms = ModelSpace(net)
    assert ms.space.names == ["width", "depth", "op0", "op1", "op2"]
    assert ms.space.size() == 2 * (1 + 2 + 2**3)  # depth 0, 1 or 3 ops chosen
    assert ms.space.is_active("op2", {"width": 4, "depth": 3})
    assert not ms.space.is_active("op1", {"width": 4, "depth": 1})


@pytest.mark.parametrize(
    "params",
    [
        {"width": 4, "depth": 0},
        {"width": 8, "depth": 1, "op0": "skip"},
        {"width": 8, "depth": 3, "op0": "conv3", "op1": "skip", "op2": "conv3"},
    ],
)
def test_build_gives_plain_modules_that_run(params):
    model = ModelSpace(net).build(params)
    assert not any(isinstance(m, (LayerChoice, ValueChoice, Repeat)) for m in model.modules())
    assert model(torch.randn(2, 3, 6, 6)).shape == (2, 5)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    n_conv3 = sum(1 for k, v in params.items() if k.startswith("op") and v == "conv3")
    assert len(convs) == 1 + n_conv3
    assert convs[0].out_channels == params["width"]


def test_from_module_copies_weights_from_factory_reinitialises():
    torch.manual_seed(0)
    template = net()
    ms = ModelSpace(template)
    a = ms.build({"width": 4, "depth": 0})
    b = ms.build({"width": 4, "depth": 0})
    assert torch.equal(a[0].weight, b[0].weight)
    assert a[0].weight.data_ptr() != b[0].weight.data_ptr()  # independent copies
    with torch.no_grad():
        a[0].weight.zero_()
    assert not torch.equal(a[0].weight, template[0].built[0].weight)
    fresh = ModelSpace(net)
    assert not torch.equal(fresh.build({"width": 4, "depth": 0})[0].weight, a[0].weight)


def test_a_study_searches_the_space():
    ms = ModelSpace(net)

    def objective(trial):
        model = ms.build(trial.params)
        return sum(p.numel() for p in model.parameters())

    study = airda.create_study(space=ms.space, strategy="grid")
    study.optimize(objective, n_trials=30)
    assert len(study.trials) == ms.space.size()
    assert study.best_params == {"width": 4, "depth": 0}


def test_markers_refuse_bad_input_and_unfrozen_use():
    with pytest.raises(ValueError, match="no candidates"):
        LayerChoice({}, label="x")
    with pytest.raises(TypeError, match=r"not an nn\.Module"):
        LayerChoice([nn.ReLU(), "relu"], label="x")
    with pytest.raises(ValueError, match="label"):
        LayerChoice([nn.ReLU()], label="")
    with pytest.raises(ValueError, match="repeated values"):
        ValueChoice("w", [1, 1], nn.Linear.__call__)
    with pytest.raises(ValueError, match="different choices"):
        ModelSpace(
            nn.Sequential(
                LayerChoice([nn.ReLU()], label="a"), LayerChoice([nn.ReLU(), nn.Tanh()], label="a")
            )
        )
    with pytest.raises(ValueError, match="no LayerChoice"):
        ModelSpace(nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="ModelSpace"):
        net()(torch.randn(1, 3, 4, 4))
    with pytest.raises(airda.space.SpaceError, match="op0"):
        ModelSpace(net).build({"width": 4, "depth": 1})


def test_hardware_aware_search_on_measured_latency():
    from airda.nas import measure_latency

    ms = ModelSpace(net)
    x = torch.randn(4, 3, 16, 16)

    def objectives(trial):
        model = ms.build(trial.params)
        params = sum(p.numel() for p in model.parameters())
        return params, measure_latency(model, x, repeats=3, warmup=1).median_ms

    study = airda.create_study(
        space=ms.space, strategy="random", directions=["minimize", "minimize"], seed=0
    )
    study.optimize(objectives, n_trials=8)
    front = study.pareto_front()
    assert front
    assert all(t.values[1] > 0 for t in front)
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(nn.Linear(2, 2), torch.randn(1, 2), repeats=0)
