"""The examples in the public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "airda",
    "airda.ops",
    "airda.ops._registry",
    "airda.ops.pack_sign_bits",
    "airda.ops.hamming_gram",
    "airda.ops.non_dominated_rank",
    "airda.ops.hypervolume",
    "airda.ops.bootstrap_means",
    "airda._text",
    "airda._deprecation",
    "airda.ops.parzen",
    "airda.ops.mixed_op",
    "airda.ops.grouped_depthwise_conv",
    "airda.nas.evaluate",
    "airda.nas.mixed_op",
    "airda.nas.oneshot",
    "airda.hpo",
    "airda.strategies",
    "airda.strategies.tpe",
    "airda.strategies.nsga2",
    "airda.strategies._pareto",
    "airda.nas",
    "airda.nas.naswot",
    "airda.nas.model_space",
    "airda.nas.latency",
    "airda.nas.search",
    "airda.strategies.reinforce",
    "airda.strategies.predictor",
    "airda.nas.nb201",
    "airda.nas.nb201_model",
    "airda.nas.cost",
    "airda.nas.benchmark",
    "airda.nas.supernet",
    "airda.nas.checkpoint",
    "airda.nas.data",
    "airda.nas.differentiable",
    "airda.nas.proxies",
    "airda.eval",
    "airda.eval._bootstrap",
    "airda.eval._tests",
    "airda.eval._effects",
    "airda.eval._compare",
    "airda.eval._protocol",
    "airda.eval._reevaluate",
    "airda.eval._report",
    "airda.codeopt",
    "airda.codeopt.profiler",
    "airda.codeopt.cvariants",
    "airda.codeopt.gate",
    "airda.codeopt.sandbox",
    "airda.codeopt.racing",
    "airda.codeopt.tuner",
    "airda.codeopt.pyvariants",
    "airda.codeopt.search",
    "airda._budget",
    "airda.schedulers._median",
    "airda.schedulers._halving",
    "airda.schedulers._registry",
    "airda.strategies.pbt",
    "airda.strategies.bohb",
    "airda.strategies.sync_halving",
    "airda.hpo.tuning",
    "airda.hpo.schedules",
    "airda.hpo.curriculum",
    "airda.strategies.cmaes",
    "airda.strategies.gp",
    "airda.hpo.functions",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0
    assert result.attempted > 0 or name == "airda.ops._registry"
