"""``@airda.codeopt.autotune`` on a Triton kernel (under the interpreter without a GPU)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
triton = pytest.importorskip("triton")


def _grid(n):
    return lambda meta: (triton.cdiv(n, meta["BLOCK"]),)


def _data(n):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, generator=g)
    y = torch.rand(n, generator=g)
    return x, y, torch.empty(n)


def test_autotune_searches_caches_and_is_correct(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRDA_CACHE_DIR", str(tmp_path))
    from tests.codeopt._triton_kernels import make_add

    kern = make_add(
        space={"BLOCK": [64, 128, 256, 512], "num_warps": [2, 4]},
        key=["n"],
        budget=3,
        strategy="random",
        max_time_s=0.0,
    )
    n = 1000
    x, y, out = _data(n)
    kern[_grid(n)](x, y, out, n)
    torch.testing.assert_close(out, x + y)
    study = kern.studies[(n,)]
    done = [t for t in study.trials if t.state.value == "complete"]
    assert len(done) == 3  # the budget, not the 8 configs
    assert set(kern.best[(n,)]) == {"BLOCK", "num_warps"}
    # The best config is on disk: a new autotuner (a new process) does not tune again.
    files = list((tmp_path / "tune" / "triton").glob("add_kernel-*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert len(doc) == 1
    fresh = make_add(space={"BLOCK": [64, 128, 256, 512], "num_warps": [2, 4]}, key=["n"], budget=3)
    out2 = torch.empty(n)
    fresh[_grid(n)](x, y, out2, n)
    assert fresh.studies == {}
    assert fresh.best[(n,)] == kern.best[(n,)]
    torch.testing.assert_close(out2, x + y)
    # Another key value tunes again.
    m = 300
    xm, ym, om = _data(m)
    kern[_grid(m)](xm, ym, om, m)
    assert (m,) in kern.studies
    torch.testing.assert_close(om, xm + ym)


def test_autotune_config_list_and_failing_config(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRDA_CACHE_DIR", str(tmp_path))
    from tests.codeopt._triton_kernels import make_add

    # BLOCK=100 is not a power of two: tl.arange refuses it, so that config fails.
    kern = make_add(
        configs=[{"BLOCK": 100}, {"BLOCK": 128}],
        key=["n"],
        strategy="grid",
        max_time_s=0.0,
        persistent=False,
    )
    n = 257
    x, y, out = _data(n)
    kern[_grid(n)](x, y, out, n)
    torch.testing.assert_close(out, x + y)
    trials = kern.studies[(n,)].trials
    assert [t.state.value for t in trials] == ["fail", "complete"]
    assert kern.best[(n,)] == {"BLOCK": 128}


def test_autotune_validates():
    from tests.codeopt._triton_kernels import make_add

    with pytest.raises(ValueError, match="not both"):
        make_add(key=["n"])
    with pytest.raises(ValueError, match="not an argument"):
        make_add(configs=[{"BLOCK": 64}], key=["m"])
