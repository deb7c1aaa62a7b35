"""One-shot search: SPOS, sandwich rule, ENAS; stored, resumable, deterministic."""

from __future__ import annotations

import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import airda  # noqa: E402
from airda.nas.evaluate import evaluate_loop  # noqa: E402
from airda.nas.oneshot import (  # noqa: E402
    TrainConfig,
    enas,
    reinitialise,
    retrain,
    search_subnets,
    spos,
    train_model,
    train_supernet,
)
from airda.nas.supernet import ElasticSupernet, NB201Supernet  # noqa: E402
from airda.space import Categorical  # noqa: E402
from airda.strategies import Reinforce  # noqa: E402
from airda.trial import TrialState  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(n_train=64, n_val=32, length=12, classes=3, seed=0, dims=1):
    g = torch.Generator().manual_seed(seed)

    def split(n):
        y = torch.randint(0, classes, (n,), generator=g)
        shape = (n, 1, length) if dims == 1 else (n, 1, length, length)
        x = torch.randn(*shape, generator=g) + y.view(-1, *([1] * (len(shape) - 1))).float()
        return x, y

    (xt, yt), (xv, yv), (xs, ys) = split(n_train), split(n_val), split(n_val)
    return types.SimpleNamespace(
        x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs, y_test=ys, num_classes=classes
    )


def _nb201(seed=0, C=4):
    torch.manual_seed(seed)
    return NB201Supernet(dims=1, in_channels=1, num_classes=3, C=C, N=1)


def _elastic(seed=0):
    torch.manual_seed(seed)
    return ElasticSupernet(
        dims=1,
        in_channels=1,
        num_classes=3,
        stem=4,
        stages=((4, 2, 1), (8, 2, 2)),
        kernel_sizes=(3, 5),
        expand_ratios=(1, 2),
        depths=(1, 2),
    )


CFG = TrainConfig(epochs=3, batch_size=16, lr=0.05)


class Stop(Exception):
    pass


def _stop_after(k):
    def callback(epoch, metrics):
        if epoch == k:
            raise Stop(f"stopped after epoch {k}")

    return callback


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def _curve(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# ---- resumable and deterministic ------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "kwargs"),
    [
        (_nb201, {"rule": "uniform"}),
        (_elastic, {"rule": "sandwich", "num_random": 1, "distill": True}),
    ],
    ids=["spos", "sandwich"],
)
def test_interrupted_and_resumed_training_equals_an_uninterrupted_run(tmp_path, make, kwargs):
    data = _data()
    whole = make()
    ref = train_supernet(whole, data, CFG, seed=3, **kwargs)

    storage = f"sqlite:///{tmp_path / 'runs.db'}"
    study = airda.create_study("train", storage=storage, direction="maximize")
    ckpt = tmp_path / "supernet.pt"
    first = make()
    with pytest.raises(Stop):
        train_supernet(
            first,
            data,
            CFG,
            study=study,
            checkpoint=ckpt,
            seed=3,
            callback=_stop_after(0),
            **kwargs,
        )
    # a new process: a fresh supernet (other initial weights), the study loaded from storage
    again = make(seed=99)
    study = airda.load_study("train", storage=storage)
    run = train_supernet(again, data, CFG, study=study, checkpoint=ckpt, seed=3, **kwargs)

    assert _same_weights(whole, again)
    assert _curve(run.history) == _curve(ref.history)
    assert run.resumed_from == 1
    trials = airda.load_study("train", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    assert "Stop: stopped after epoch 0" in trials[0].error
    assert trials[1].user_attrs["resumed_from"] == {"study": "train", "number": 0, "epoch": 1}
    # the resumed trial holds the whole curve, as the uninterrupted one
    assert trials[1].intermediate == ref.trial.intermediate
    assert len(trials[1].intermediate) == CFG.epochs
    assert trials[1].value == ref.trial.value == ref.history[-1]["val_accuracy"]
    assert len(trials[1].user_attrs["history"]) == CFG.epochs


def test_enas_resumed_equals_uninterrupted_including_the_controller(tmp_path):
    data = _data()

    def run(net, callback=None, ckpt=None, study=None, ctrl=None):
        ctrl = ctrl or airda.create_study(
            space=net.space,
            strategy=Reinforce(learning_rate=0.1, seed=5),
            direction="maximize",
            cache=False,
        )
        out = train_supernet(
            net,
            data,
            CFG,
            rule="controller",
            controller=ctrl,
            controller_steps=3,
            controller_batch=2,
            reward_size=16,
            checkpoint=ckpt,
            study=study,
            seed=1,
            callback=callback,
        )
        return out, ctrl

    whole = _nb201()
    ref, ref_ctrl = run(whole)
    storage = f"sqlite:///{tmp_path / 'enas.db'}"
    ctrl = airda.create_study(
        "ctrl",
        storage=storage,
        space=whole.space,
        strategy=Reinforce(learning_rate=0.1, seed=5),
        direction="maximize",
        cache=False,
    )
    ckpt = tmp_path / "enas.pt"
    with pytest.raises(Stop):
        run(_nb201(), callback=_stop_after(1), ckpt=ckpt, ctrl=ctrl)
    again = _nb201(seed=7)
    ctrl = airda.load_study("ctrl", storage=storage, strategy=Reinforce(learning_rate=0.1, seed=5))
    out, ctrl = run(again, ckpt=ckpt, ctrl=ctrl)

    assert _same_weights(whole, again)
    assert _curve(out.history) == _curve(ref.history)
    got = [(t.params, t.values) for t in ctrl.trials]
    want = [(t.params, t.values) for t in ref_ctrl.trials]
    assert got == want
    assert len(got) == CFG.epochs * 3 * 2
    assert {t.user_attrs["phase"] for t in ctrl.trials} == {"train"}
    # the controller learnt the same policy
    for name, p in ctrl.strategy.probabilities().items():
        np.testing.assert_array_equal(p, ref_ctrl.strategy.probabilities()[name])


def test_a_finished_checkpoint_is_not_trained_again(tmp_path):
    data = _data()
    ckpt = tmp_path / "c.pt"
    net = _nb201()
    train_supernet(net, data, TrainConfig(epochs=1, batch_size=16), checkpoint=ckpt)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    run = train_supernet(
        _nb201(seed=4), data, TrainConfig(epochs=1, batch_size=16), checkpoint=ckpt
    )
    assert run.resumed_from == 1
    assert len(run.history) == 1
    assert run.trial.state is TrialState.COMPLETE
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_checkpoint_of_another_supernet_or_setup_is_refused(tmp_path):
    data = _data()
    ckpt = tmp_path / "c.pt"
    train_supernet(_nb201(), data, TrainConfig(epochs=1, batch_size=16), checkpoint=ckpt)
    with pytest.raises(ValueError, match="another supernet: C is 4 there, 8 here"):
        train_supernet(_nb201(C=8), data, TrainConfig(epochs=1, batch_size=16), checkpoint=ckpt)
    with pytest.raises(ValueError, match="another supernet: kind"):
        train_supernet(_elastic(), data, TrainConfig(epochs=1, batch_size=16), checkpoint=ckpt)
    with pytest.raises(ValueError, match="another training set-up: config"):
        train_supernet(_nb201(), data, TrainConfig(epochs=1, batch_size=32), checkpoint=ckpt)
    with pytest.raises(ValueError, match="another training set-up: seed is 0 there, 1 here"):
        train_supernet(
            _nb201(), data, TrainConfig(epochs=1, batch_size=16), checkpoint=ckpt, seed=1
        )


# ---- the rules -----------------------------------------------------------------------------


def test_training_reports_every_epoch_through_the_study(tmp_path):
    data = _data()
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = airda.create_study("t", storage=storage, direction="maximize")
    run = train_supernet(_nb201(), data, CFG, study=study, probes=2)
    t = airda.load_study("t", storage=storage).trials[0]
    assert t.state is TrialState.COMPLETE
    assert sorted(t.intermediate) == [0, 1, 2]
    assert t.user_attrs["setup"]["rule"] == "uniform"
    assert t.user_attrs["supernet"]["kind"] == "nb201"
    assert len(t.user_attrs["probes"]) == 2
    hist = t.user_attrs["history"]
    assert [h["epoch"] for h in hist] == [0, 1, 2]
    assert hist[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine to zero
    assert all(0 <= h["val_accuracy"] <= 1 and np.isfinite(h["train_loss"]) for h in hist)
    assert run.history == hist


def test_sandwich_trains_largest_smallest_and_random_and_distils():
    data = _data()
    net = _elastic()
    seen = []
    forward = net.forward

    def spy(x, arch):
        seen.append(dict(arch))
        return forward(x, arch)

    net.forward = spy
    evaluated = []

    def evaluator(supernet, archs, x, y, *, calib=None):
        evaluated.append(len(archs))
        return evaluate_loop(supernet, archs, x, y, calib=calib)

    run = train_supernet(
        net,
        data,
        TrainConfig(epochs=1, batch_size=16),
        rule="sandwich",
        num_random=2,
        distill=True,
        evaluator=evaluator,
    )
    steps = 64 // 16
    assert len(seen) == steps * 4
    for s in range(steps):
        assert seen[4 * s] == net.largest()
        assert seen[4 * s + 1] == net.smallest()
    assert run.probes[:2] == [net.largest(), net.smallest()]
    assert evaluated == [4]  # the probes, through the evaluator given


def test_uniform_sampling_covers_the_space():
    data = _data(n_train=256)
    net = _nb201()
    seen = []
    forward = net.forward
    net.forward = lambda x, arch: (seen.append(tuple(arch.values())), forward(x, arch))[1]
    train_supernet(net, data, TrainConfig(epochs=2, batch_size=8), probes=1)
    picks = [s for s in seen[: 2 * 256 // 8]]
    assert len(set(picks)) == len(picks)  # 64 draws from 15,625: all distinct
    ops = [op for p in picks for op in p]
    counts = np.unique(ops, return_counts=True)[1]
    assert len(counts) == 5
    assert counts.min() > 40


def test_nan_loss_fails_the_trial_with_the_reason():
    data = _data()
    data.x_train = data.x_train.clone()
    data.x_train[0, 0, 0] = float("nan")
    study = airda.create_study(direction="maximize")
    with pytest.raises(FloatingPointError, match="training loss is nan"):
        train_supernet(_nb201(), data, TrainConfig(epochs=1, batch_size=64), study=study)
    t = study.trials[0]
    assert t.state is TrialState.FAIL
    assert "training loss is nan" in t.error


def test_bad_input_is_named():
    data = _data()
    net = _nb201()
    with pytest.raises(ValueError, match="rule must be one of"):
        train_supernet(net, data, CFG, rule="greedy")
    with pytest.raises(ValueError, match="distill applies to rule='sandwich'"):
        train_supernet(net, data, CFG, distill=True)
    with pytest.raises(ValueError, match="needs a controller study"):
        train_supernet(net, data, CFG, rule="controller")
    ctrl = airda.create_study(space={"x": Categorical([1, 2])}, direction="maximize")
    with pytest.raises(ValueError, match="controller study's space"):
        train_supernet(net, data, CFG, rule="controller", controller=ctrl)
    with pytest.raises(ValueError, match="x_val and y_val"):
        train_supernet(net, types.SimpleNamespace(x_train=data.x_train, y_train=data.y_train))
    with pytest.raises(ValueError, match="in_channels=1"):
        train_supernet(net, _data(dims=2), CFG)
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="not over this supernet's space"):
        search_subnets(net, data, n_trials=1, study=airda.create_study(direction="maximize"))


# ---- search --------------------------------------------------------------------------------


def test_search_trials_are_subnets_scored_through_the_evaluator():
    data = _data()
    net = _nb201()
    calls = []

    def evaluator(supernet, archs, x, y, *, calib=None):
        calls.append(len(archs))
        assert calib is not None
        assert calib.shape[0] == 20
        return evaluate_loop(supernet, archs, x, y, calib=calib)

    study = search_subnets(net, data, n_trials=25, batch=10, calib_size=20, evaluator=evaluator)
    trials = study.trials
    assert len(trials) == 25
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert calls == [10, 10, 5]
    assert study.strategy.name == "rea"
    assert study.strategy.population == 20
    # a trial's value is the evaluator's accuracy of its subnet
    t = trials[3]
    want = evaluate_loop(net, [t.params], data.x_val, data.y_val, calib=data.x_train[:20])[0]
    assert t.value == want["accuracy"]
    assert t.user_attrs["val_loss"] == want["loss"]


def test_search_reuses_repeated_subnets_and_records_evaluator_failures():
    data = _data()
    net = _nb201()
    study = airda.create_study(space=net.space, direction="maximize")
    arch = net.sample(np.random.default_rng(0))
    study.enqueue(arch)
    study.enqueue(arch)
    calls = []

    def evaluator(supernet, archs, x, y, *, calib=None):
        calls.append(archs)
        return evaluate_loop(supernet, archs, x, y, calib=calib)

    search_subnets(net, data, n_trials=2, batch=1, study=study, evaluator=evaluator)
    a, b = study.trials
    assert len(calls) == 1
    assert b.user_attrs["cached_from"] == a.number
    assert a.value == b.value

    def broken(supernet, archs, x, y, *, calib=None):
        raise RuntimeError("out of memory")

    search_subnets(net, data, n_trials=5, batch=2, study=study, evaluator=broken)
    failed = study.trials[2:]
    assert [t.state for t in failed] == [TrialState.FAIL] * 3
    assert all(t.error == "RuntimeError: out of memory" for t in failed)


def test_spos_end_to_end_is_stored_and_a_second_call_resumes(tmp_path):
    data = _data()
    storage = tmp_path / "spos.db"
    kw = {"n_trials": 15, "batch": 5, "storage": storage, "name": "run", "seed": 0}
    res = spos(
        _nb201(), data, TrainConfig(epochs=2, batch_size=16), checkpoint=tmp_path / "c.pt", **kw
    )
    assert res.search.name == "run/search"
    assert res.training.study.name == "run/supernet"
    assert res.arch == res.search.best_params
    assert res.val_accuracy == res.search.best_value
    search = airda.load_study("run/search", storage=storage)
    assert len(search.trials) == 15
    assert search.strategy.name == "rea"
    again = spos(
        _nb201(seed=3),
        data,
        TrainConfig(epochs=2, batch_size=16),
        checkpoint=tmp_path / "c.pt",
        **kw,
    )
    assert again.training.resumed_from == 2
    assert again.arch == res.arch
    assert len(airda.load_study("run/search", storage=storage).trials) == 15


def test_enas_derives_from_the_controller():
    data = _data()
    res = enas(
        _nb201(),
        data,
        TrainConfig(epochs=2, batch_size=16),
        controller_steps=2,
        reward_size=16,
        derive=3,
        seed=0,
    )
    trials = res.search.trials
    derive = [t for t in trials if t.user_attrs["phase"] == "derive"]
    assert len(trials) == 2 * 2 + 4
    assert len(derive) == 4
    assert derive[-1].system_attrs.get("fixed")  # the controller's most likely subnet
    best = max(derive, key=lambda t: t.value)
    assert res.arch == best.params
    assert res.val_accuracy == best.value


# ---- standalone training -------------------------------------------------------------------


def test_retrain_from_scratch_or_inherited():
    data = _data()
    net = _nb201()
    train_supernet(net, data, TrainConfig(epochs=1, batch_size=16))
    arch = net.largest()
    inherited = net.extract(arch)
    fresh = reinitialise(net.extract(arch), seed=0)
    assert not _same_weights(inherited, fresh)
    assert _same_weights(fresh, reinitialise(net.extract(arch), seed=0))
    cfg = TrainConfig(epochs=1, batch_size=16)
    a = retrain(net, arch, data, cfg, seed=0)
    b = retrain(net, arch, data, cfg, seed=0)
    c = retrain(net, arch, data, cfg, from_scratch=False, seed=0)
    assert a["from_scratch"]
    assert not c["from_scratch"]
    assert a["params"] == c["params"] == sum(p.numel() for p in inherited.parameters())
    assert a["test_accuracy"] == b["test_accuracy"]  # deterministic for a seed
    assert set(a) >= {"train_accuracy", "val_accuracy", "test_accuracy", "seconds", "arch"}


def test_train_model_learns_a_separable_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 5, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    data = types.SimpleNamespace(x_train=x[:150], y_train=y[:150], x_val=x[150:], y_val=y[150:])
    torch.manual_seed(0)
    out = train_model(torch.nn.Linear(5, 2), data, TrainConfig(epochs=30, batch_size=25))
    assert out["val_accuracy"] >= 0.9
    assert "test_accuracy" not in out


KILLED = """
import os, sys, torch
torch.set_num_threads(1)
import airda
sys.path.insert(0, {root!r})
from tests.nas.test_oneshot import CFG, _data, _nb201
from airda.nas.oneshot import train_supernet

def die(epoch, metrics):
    os._exit(3)  # killed: no exception handler runs, the trial stays running

study = airda.create_study("train", storage={storage!r}, direction="maximize")
train_supernet(_nb201(), _data(), CFG, study=study, checkpoint={ckpt!r}, seed=3, callback=die)
"""


def test_a_killed_run_resumes_and_closes_its_running_trial(tmp_path):
    import pathlib
    import subprocess
    import sys

    root = str(pathlib.Path(__file__).resolve().parents[2])
    storage = f"sqlite:///{tmp_path / 'k.db'}"
    ckpt = str(tmp_path / "k.pt")
    code = KILLED.format(root=root, storage=storage, ckpt=ckpt)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    study = airda.load_study("train", storage=storage)
    # Loading the study closes the dead process's running trial.
    assert study.trials[0].state is TrialState.FAIL
    assert study.trials[0].error.startswith("WorkerDied")
    whole = _nb201()
    ref = train_supernet(whole, _data(), CFG, seed=3)
    again = _nb201(seed=5)
    run = train_supernet(again, _data(), CFG, study=study, checkpoint=ckpt, seed=3)
    assert _same_weights(whole, again)
    assert run.resumed_from == 1
    first, second = airda.load_study("train", storage=storage).trials
    assert first.state is TrialState.FAIL
    assert second.user_attrs["resumed_from"] == {"study": "train", "number": 0, "epoch": 1}
    assert second.intermediate == ref.trial.intermediate


def test_search_with_evaluate_many_scores_as_the_loop():
    evaluate_many = pytest.importorskip("airda.nas.evaluate").evaluate_many
    data = _data()
    net = _elastic()
    train_supernet(net, data, TrainConfig(epochs=1, batch_size=16), rule="sandwich")
    kw = {"n_trials": 12, "batch": 6, "calib_size": 32, "seed": 0}
    loop = search_subnets(net, data, evaluator=evaluate_loop, **kw)
    many = search_subnets(net, data, evaluator=evaluate_many, **kw)
    got = [(t.params, t.value) for t in many.trials]
    want = [(t.params, t.value) for t in loop.trials]
    assert [p for p, _ in got] == [p for p, _ in want]
    np.testing.assert_allclose([v for _, v in got], [v for _, v in want], atol=1e-6)
