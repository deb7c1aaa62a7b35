"""The dashboard's views of architecture searches and evaluation reports: an NB201 search on the
NAS-Bench-201 table (where the shared copy exists; a synthetic NB201 study written with
ask/tell otherwise) shows its cell graph (an SVG drawn by the server: 6 edges labelled by op)
and its accuracy/cost front; a model-space study shows its choices; a study carrying
``airda.eval`` results (``compare(...).attach``, ``reevaluate``) shows its verdicts with
intervals and p-values. Checked through the JSON API and in headless Chromium (screenshots)."""

from __future__ import annotations

import threading
import time

import pytest

import airda
from airda.dashboard import DashboardServer
from airda.space import Categorical, Int
from airda.trial import TrialState
from tests.dashboard.test_dashboard import _browse, _chromium, _finish, _json, _ready
from tests.nas.shared_data import shared_data_root

pytest.importorskip("plotly")

# ../shared/data beside the checkout, or where AIRDA_SHARED_DATA points (tests/nas/shared_data.py)
TABLE = shared_data_root() / "nasbench201" / "nb201_12epoch.csv"

# ---- studies ---------------------------------------------------------------------------------


def _nb201_search(path: str) -> str:
    """A real airda.nas search on the NAS-Bench-201 table (regularized evolution on
    nb201_space, the table's 12-epoch CIFAR-10 validation accuracy, each network's parameter count from
    airda.nas.build_model); where the table is missing, an NB201-space study written with
    ask/tell on a synthetic accuracy and cost. The study's description."""
    from airda.nas import nb201_space, params_to_arch

    if TABLE.is_file():
        from airda.nas import TabularBenchmark, build_model, count_params

        bench = TabularBenchmark.from_csv(TABLE)
        accuracy = bench.objective("cifar10-val")

        def objective(trial):
            value = accuracy(trial)  # records the arch string as the 'arch' attribute
            model = build_model(params_to_arch(trial.params))
            trial.set_user_attr("params", count_params(model))
            return value

        study = airda.create_study(
            "nb201",
            storage=path,
            space=nb201_space(),
            strategy="rea",  # regularized evolution: its random first population spreads the costs
            direction="maximize",
            seed=0,
        )
        study.optimize(objective, n_trials=24)
        return f"NAS-Bench-201 table {TABLE}"
    study = airda.create_study(
        "nb201", storage=path, space=nb201_space(), direction="maximize", seed=0
    )
    weights = {
        "none": 0,
        "skip_connect": 0,
        "avg_pool_3x3": 0,
        "nor_conv_1x1": 1,
        "nor_conv_3x3": 9,
    }
    for _ in range(24):
        trial = study.ask()
        ops = params_to_arch(trial.params).ops
        size = sum(weights[o] for o in ops)
        trial.set_user_attr("params", 100_000 + 10_000 * size)
        study.tell(trial, 80.0 + size - 0.1 * size**2 / 5 + 0.01 * trial.number)
    return "a synthetic NB201 study (no NAS-Bench-201 table at " + str(TABLE) + ")"


class _ConvCount:
    """A stand-in table where the NAS-Bench-201 one is absent: more convolutions score higher."""

    def query(self, arch, metric):
        return float(str(arch).count("conv"))


def _benchmark_search(path: str) -> None:
    """``airda nas search --storage``'s studies: airda.nas.benchmark_search keeps one per seed
    (no cost and no arch attribute: detected by its space alone)."""
    from airda.nas import TabularBenchmark, benchmark_search

    bench = TabularBenchmark.from_csv(TABLE) if TABLE.is_file() else _ConvCount()
    benchmark_search(
        bench,
        metric="cifar10-val",
        strategy="random",
        budget=10,
        seeds=1,
        storage=path,
        study_prefix="search",
    )


def _model_space(path: str) -> None:
    """Not NB201: a few choices, and a latency attribute."""
    space = {
        "depth": Int(1, 4),
        "width": Categorical([16, 32, 64]),
        "op": Categorical(["conv", "pool"]),
    }

    def objective(trial):
        trial.set_user_attr("latency_ms", 0.5 * trial["depth"] * trial["width"] / 16)
        return 0.7 + 0.05 * trial["depth"] + (0.02 if trial["op"] == "conv" else 0.0)

    study = airda.create_study("choices", storage=path, space=space, direction="maximize", seed=0)
    study.optimize(objective, n_trials=12)


NEW = [0.842, 0.851, 0.838, 0.849, 0.845, 0.853, 0.840, 0.847]
OLD = [0.831, 0.836, 0.829, 0.841, 0.833, 0.842, 0.830, 0.835]
SAME = [o + 0.002 * (-1) ** i for i, o in enumerate(OLD)]


def _evaluated(path: str) -> dict[str, dict]:
    """A finished search with comparisons attached and a held-out re-evaluation recorded, as
    airda.eval writes them on the study; the attached comparisons' records."""
    from airda.eval import compare, compare_many, finish_search, reevaluate
    from airda.space import Float

    study = airda.create_study(
        "evaluated", storage=path, space={"x": Float(0, 1)}, direction="maximize", seed=0
    )
    study.optimize(lambda t: 1 - (t["x"] - 0.3) ** 2, n_trials=12)
    compare(NEW, OLD, n_resamples=2000, name="new recipe").attach(study)
    for key, c in compare_many({"a": NEW, "b": SAME}, OLD, n_resamples=2000).items():
        c.attach(study, key=f"{key} (holm)")
    finish_search(study)
    reevaluate(
        study,
        lambda p, seed: 1 - (p["x"] - 0.3) ** 2 - 0.01 + 0.001 * (seed % 7),
        top_k=2,
        seeds=8,
        baseline={"x": 0.9},
        n_resamples=500,
    )
    return dict(study.user_attrs["airda.eval.comparisons"])


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> dict:
    path = str(tmp_path_factory.mktemp("dash-nas") / "studies.db")
    made = _nb201_search(path)
    _benchmark_search(path)
    _model_space(path)
    comparisons = _evaluated(path)
    return {"path": path, "nb201": made, "comparisons": comparisons}


@pytest.fixture(scope="module")
def server(studies):
    srv = DashboardServer(studies["path"], port=0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    """Whether q = (cost, accuracy) dominates p: no costlier, no less accurate, one strictly."""
    return q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1])


# ---- the API ----------------------------------------------------------------------------------


def test_the_server_reads_through_a_read_only_storage(server):
    assert server.source.storage.read_only


def test_nas_studies_are_detected(server, studies):
    print("NB201 study:", studies["nb201"])
    nb = _ready(server, "nb201")
    assert nb["nas"] == {"kind": "nb201", "costs": ["params"]}
    assert not nb["has_eval"]
    choices = _ready(server, "choices")
    assert choices["nas"] == {"kind": "choices", "costs": ["latency_ms"]}
    plain = _ready(server, "evaluated")
    assert plain["nas"] is None
    assert plain["has_eval"]
    assert _json(server, "/api/studies/evaluated/architecture")[0] == 422


def test_cell_graph_of_the_best_and_of_any_trial(server, studies):
    from airda.nas import params_to_arch
    from airda.nas.nb201 import EDGE_NAMES

    _ready(server, "nb201")
    trials = airda.load_study("nb201", storage=studies["path"]).trials
    best = max((t for t in trials if t.state is TrialState.COMPLETE), key=lambda t: t.value)
    code, body = _json(server, "/api/studies/nb201/architecture")
    assert code == 200, body
    assert body["number"] == best.number
    assert body["arch"] == str(params_to_arch(best.params))
    # (A trial answered from the study's cache, a repeated cell, records no cost.)
    assert body["costs"] == {k: v for k, v in best.user_attrs.items() if k == "params"}
    svg = body["svg"]
    assert svg.startswith("<svg")
    assert svg.count('class="cell-edge"') == 6
    for edge in EDGE_NAMES:
        op = best.params[edge]
        assert f'data-edge="{edge}" data-op="{op}"' in svg
    assert svg.count('class="cell-node"') == 4
    other = trials[3]
    code, body = _json(server, f"/api/studies/nb201/architecture?trial={other.number}")
    assert body["number"] == other.number
    assert body["arch"] == str(params_to_arch(other.params))
    code, body = _json(server, "/api/studies/nb201/architecture?trial=999")
    assert code == 422
    assert "no trial 999" in body["error"]


def test_a_benchmark_search_study_is_an_nb201_search_without_a_front(server, studies):
    from airda.nas import params_to_arch

    summary = _ready(server, "search-seed0")
    assert summary["nas"] == {"kind": "nb201", "costs": []}
    trials = airda.load_study("search-seed0", storage=studies["path"]).trials
    best = max((t for t in trials if t.state is TrialState.COMPLETE), key=lambda t: t.value)
    code, body = _json(server, "/api/studies/search-seed0/architecture")
    assert code == 200
    assert body["number"] == best.number
    assert body["arch"] == str(params_to_arch(best.params))
    assert body["svg"].count('class="cell-edge"') == 6
    code, body = _json(server, "/api/studies/search-seed0/plot/front")
    assert code == 422
    assert "no cost attribute" in body["error"]


def test_choices_of_a_model_space_trial(server, studies):
    _ready(server, "choices")
    trials = airda.load_study("choices", storage=studies["path"]).trials
    code, body = _json(server, "/api/studies/choices/architecture?trial=2")
    assert code == 200
    assert body["svg"] is None
    assert body["arch"] is None
    assert body["params"] == trials[2].params
    assert body["costs"] == {"latency_ms": trials[2].user_attrs["latency_ms"]}


def test_accuracy_cost_front(server, studies):
    _ready(server, "nb201")
    trials = airda.load_study("nb201", storage=studies["path"]).trials
    done = [t for t in trials if t.state is TrialState.COMPLETE and "params" in t.user_attrs]
    assert len(done) >= 20
    points = {t.number: (float(t.user_attrs["params"]), t.value) for t in done}
    want = {n for n, p in points.items() if not any(_dominated(p, q) for q in points.values())}
    code, body = _json(server, "/api/studies/nb201/plot/front")
    assert code == 200, body
    traces = {t["name"]: t for t in body["figure"]["data"]}
    assert body["figure"]["layout"]["xaxis"]["title"]["text"] == "params"

    front = set(traces["non-dominated"]["customdata"])
    assert front == want
    assert set(traces["trial"]["customdata"]) == set(points) - want
    assert _json(server, "/api/studies/nb201/plot/front?cost=flops")[0] == 422
    assert _json(server, "/api/studies/choices/plot/front")[0] == 200


def test_evaluation_report(server, studies, tmp_path):
    from airda.eval import compare

    _ready(server, "evaluated")
    code, body = _json(server, "/api/studies/evaluated/eval")
    assert code == 200
    rows = {r["name"]: r for r in body["comparisons"]}
    assert set(rows) == set(studies["comparisons"]) == {"new recipe", "a (holm)", "b (holm)"}
    for name, want in studies["comparisons"].items():
        for key in ("verdict", "effect", "low", "high", "p_value", "p_adjusted", "correction"):
            assert rows[name][key] == want[key], (name, key)
    assert rows["new recipe"]["verdict"] == "better"
    assert rows["new recipe"]["low"] > 0
    assert rows["b (holm)"]["verdict"] == "no detectable difference"
    assert rows["a (holm)"]["n_comparisons"] == 2
    reeval = body["reevaluation"]
    assert all(c["name"].startswith("trial ") for c in reeval["candidates"])
    assert len(reeval["candidates"]) == 2
    assert reeval["baseline"]["name"] == "baseline"
    assert reeval["candidates"][0]["comparison"]["verdict"] == "better"
    assert "optimistic" in reeval["optimism_definition"]
    assert body["finished"]["n_trials"] == 12
    # The page's poll says whether a report is there (it builds the section when one appears).
    assert _json(server, "/api/studies/evaluated/since?seq=0")[1]["has_eval"]
    assert not _json(server, "/api/studies/choices/since?seq=0")[1]["has_eval"]
    assert len(body["test_reads"]) == 1
    # A comparison attached while the dashboard runs shows without a new trial.
    study = airda.load_study("evaluated", storage=studies["path"])
    compare(OLD, NEW, n_resamples=500, name="old recipe").attach(study)
    time.sleep(0.6)  # the server reads a study at most every 0.5 s
    rows = {r["name"]: r for r in _json(server, "/api/studies/evaluated/eval")[1]["comparisons"]}
    assert rows["old recipe"]["verdict"] == "worse"


# ---- a real browser ---------------------------------------------------------------------------


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (apt-get install chromium)")
def test_nas_and_eval_pages_in_headless_chromium(server, studies, tmp_path):
    from airda.nas import params_to_arch

    for name in ("nb201", "choices", "evaluated"):
        _ready(server, name)
    shots = {k: tmp_path / f"{k}.png" for k in ("nb201", "choices", "evaluated")}
    runs = {k: _browse(_chromium(), server.url + f"study/{k}", shots[k]) for k in shots}
    doms = {}
    for k, proc in runs.items():
        out = _finish(proc)
        if out is None:  # see test_pages_in_headless_chromium: load it once more, alone
            out = _finish(_browse(_chromium(), server.url + f"study/{k}", shots[k]))
        assert out is not None, f"chromium never finished loading study/{k}"
        doms[k] = out
        assert shots[k].stat().st_size > 10_000
        print(f"screenshot of {server.url}study/{k}: {shots[k]}")

    nas = doms["nb201"]
    start = nas.find('id="arch-view"')
    view = nas[start : nas.find("</section>", start)]
    assert view.count('class="cell-edge"') == 6
    trials = airda.load_study("nb201", storage=studies["path"]).trials
    best = max((t for t in trials if t.state is TrialState.COMPLETE), key=lambda t: t.value)
    ops = params_to_arch(best.params).ops
    labels = [s.split(">", 1)[1] for s in view.split("</text></g>")[:-1] if "paint-order" in s]
    assert sorted(label.rsplit(">", 1)[-1] for label in labels) == sorted(ops)
    assert f"best trial {best.number}" in nas
    front = nas.find('id="plot-front"')
    assert 'class="main-svg"' in nas[front : nas.find("</section>", front)]

    choices = doms["choices"]
    start = choices.find('id="arch-choices"')
    table = choices[start : choices.find("</table>", start)]
    assert table.count('class="choice-row"') == 3  # depth, width, op
    assert "<svg" not in choices[choices.find('id="arch-view"') : start]
    front = choices.find('id="plot-front"')
    assert 'class="main-svg"' in choices[front : choices.find("</section>", front)]
    assert 'id="front-cost"' in choices

    ev = doms["evaluated"]
    start = ev.find('id="comparisons"')
    table = ev[start : ev.find("</table>", start)]
    # The three attached before the server started (and "old recipe" if that test ran first).
    assert table.count('class="comparison-row"') == 3 + ("old recipe" in table)
    assert "verdict-better" in table
    assert "no detectable difference" in table
    assert table.count('class="interval"') >= 3
    start = ev.find('id="reevaluation"')
    assert ev[start : ev.find("</table>", start)].count('class="reevaluation-row"') == 3
    assert "Search declared finished" in ev
