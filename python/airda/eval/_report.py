"""Reports of a study's evaluation: Markdown and HTML with PNG plots, readable without a server.

The report gathers what a reader needs to trust (or not) a search's result: the trials, the
best one, the protocol record (when the search was declared finished, every read of the test
split, and any trial run after the first read), the held-out re-evaluation with intervals and
the winner's curse, and attached comparisons. Plots need matplotlib (``pip install
'airda[report]'``); without it the report says so and keeps the tables.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import time
from pathlib import Path
from typing import Any

from airda.eval._compare import STUDY_ATTR as COMPARISONS_ATTR
from airda.eval._protocol import FINISHED_ATTR, READS_ATTR, SPLITS_ATTR
from airda.eval._reevaluate import STUDY_ATTR as REEVALUATION_ATTR
from airda.eval._reevaluate import optimism_definition

__all__ = ["write_report"]


def _fmt(v: Any, spec: str = ".6g") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return format(v, spec)
    return str(v)


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class _Doc:
    """Builds the same content as Markdown and as HTML."""

    def __init__(self) -> None:
        self.md: list[str] = []
        self.html: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.md.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(self, text: str) -> None:
        self.md.append(text + "\n")
        self.html.append(f"<p>{html.escape(text)}</p>")

    def table(self, head: list[str], rows: list[list[Any]]) -> None:
        if not rows:
            self.para("(none)")
            return
        cells = [[_fmt(v) for v in r] for r in rows]
        self.md.append("| " + " | ".join(head) + " |")
        self.md.append("|" + "---|" * len(head))
        self.md.extend("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in cells)
        self.md.append("")
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        trs = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells
        )
        self.html.append(f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>")

    def image(self, name: str, alt: str) -> None:
        self.md.append(f"![{alt}]({name})\n")
        self.html.append(f'<p><img src="{html.escape(name)}" alt="{html.escape(alt)}"></p>')


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
    "text-align:left}th{background:#f3f3f3}img{max-width:100%}"
)


def _plots(study: Any, reeval: dict[str, Any] | None, out: Path) -> tuple[list[str], str | None]:
    """Draw the PNGs; return their file names, or a reason none were drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "matplotlib is not installed (pip install 'airda[report]'): no plots"
    names = []
    done = [t for t in study.trials if t.state.value == "complete" and t.values]
    if done:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        xs = [t.number for t in done]
        ys = [t.values[0] for t in done]
        best, running = [], None
        better = max if study.directions[0] == "maximize" else min
        for y in ys:
            running = y if running is None else better(running, y)
            best.append(running)
        ax.plot(xs, ys, ".", alpha=0.5, label="trial")
        ax.step(xs, best, where="post", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel("objective")
        ax.set_title("search history")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "history.png", dpi=110)
        plt.close(fig)
        names.append("history.png")
    if reeval:
        rows = list(reeval["candidates"]) + ([reeval["baseline"]] if reeval["baseline"] else [])
        fig, ax = plt.subplots(figsize=(6, 0.6 * len(rows) + 1.5))
        for i, row in enumerate(rows):
            scores = [s for s in row["scores"] if s is not None]
            ax.plot(scores, [i] * len(scores), "o", alpha=0.4, color="tab:blue")
            if row["mean"] is not None:
                lo = row["low"] if row["low"] is not None else row["mean"]
                hi = row["high"] if row["high"] is not None else row["mean"]
                ax.errorbar(
                    [row["mean"]],
                    [i],
                    xerr=[[row["mean"] - lo], [hi - row["mean"]]],
                    fmt="D",
                    color="black",
                    capsize=4,
                )
        ax.set_yticks(range(len(rows)), [r["name"] for r in rows])
        ax.set_xlabel(f"held-out score ({reeval['split']}): runs, mean and interval")
        ax.set_title("held-out score distributions")
        fig.tight_layout()
        fig.savefig(out / "scores.png", dpi=110)
        plt.close(fig)
        names.append("scores.png")
        pts = [c for c in reeval["candidates"] if c["mean"] is not None]
        if pts:
            fig, ax = plt.subplots(figsize=(4.5, 4.5))
            xs = [c["search_value"] for c in pts]
            ys = [c["mean"] for c in pts]
            err = [
                [c["mean"] - (c["low"] if c["low"] is not None else c["mean"]) for c in pts],
                [(c["high"] if c["high"] is not None else c["mean"]) - c["mean"] for c in pts],
            ]
            ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3)
            for c in pts:
                ax.annotate(
                    c["name"],
                    (c["search_value"], c["mean"]),
                    fontsize=8,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
            lo, hi = min(xs + ys), max(xs + ys)
            pad = (hi - lo) * 0.1 or 1e-3
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="grey", label="y = x")
            ax.set_xlabel("search (validation) value")
            ax.set_ylabel("held-out mean")
            ax.set_title("validation vs held-out")
            ax.legend()
            fig.tight_layout()
            fig.savefig(out / "validation_vs_heldout.png", dpi=110)
            plt.close(fig)
            names.append("validation_vs_heldout.png")
    return names, None


def write_report(study: Any, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` and the PNG plots of a study into ``out_dir``.

    Returns:
        The written files by kind ("markdown", "html", and each plot's name).

    Example:
        >>> import airda, tempfile
        >>> from airda.eval import write_report
        >>> from airda.space import Float
        >>> study = airda.create_study(space={"x": Float(0, 1)}, seed=0)
        >>> study.optimize(lambda t: t["x"], n_trials=5)
        >>> written = write_report(study, tempfile.mkdtemp())
        >>> written['markdown'].name, written['html'].name
        ('report.md', 'report.html')
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    attrs = study.user_attrs
    trials = study.trials
    doc = _Doc()
    doc.heading(f"Study {study.name}", 1)
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.value] = states.get(t.state.value, 0) + 1
    doc.para(
        f"{len(trials)} trials ("
        + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        + f"); direction(s): {', '.join(study.directions)}; strategy: "
        + f"{type(study.strategy).__name__}. Report written {_when(time.time())}."
    )
    complete = [t for t in trials if t.state.value == "complete"]
    if complete and len(study.directions) == 1:
        best = study.best_trial
        doc.para(f"Best trial: {best.number}, value {_fmt(best.values[0])}, params {best.params}.")

    doc.heading("Protocol")
    finished = attrs.get(FINISHED_ATTR)
    reads = attrs.get(READS_ATTR, [])
    if finished:
        doc.para(
            f"The search was declared finished at {_when(finished.get('time'))} with "
            f"{finished.get('n_trials')} trials."
        )
    elif attrs.get(SPLITS_ATTR):
        doc.para("The search has not been declared finished: the test split is still locked.")
    else:
        # Nothing is locked where nothing was split: say that the protocol was not used.
        doc.para(
            "No data splits are recorded for this study (airda.eval.Splits), so no test split "
            "was locked and the search was not declared finished (airda.eval.finish_search)."
        )
    doc.table(
        ["read at", "what", "items", "worker", "trials then"],
        [
            [
                _when(r.get("time")),
                r.get("what"),
                r.get("n"),
                r.get("worker", "-"),
                r.get("n_trials", "-"),
            ]
            for r in reads
        ],
    )
    if reads:
        first = min(r.get("n_trials", 0) for r in reads)
        if len(trials) > first:
            doc.para(
                f"WARNING: {len(trials) - first} trial(s) ran after the test split was first "
                "read; results on the test split may be tuned to it."
            )

    reeval = attrs.get(REEVALUATION_ATTR)
    doc.heading("Held-out re-evaluation")
    if reeval:
        doc.para(
            f"Split '{reeval['split']}', {len(reeval['seeds'])} seeds, direction "
            f"{reeval['direction']}; intervals are bootstrap intervals over seeds; comparisons "
            "are paired by seed and corrected for the number of candidates."
        )
        rows = []
        for c in list(reeval["candidates"]) + ([reeval["baseline"]] if reeval["baseline"] else []):
            cmp = c.get("comparison") or {}
            rows.append(
                [
                    c["name"],
                    c["search_value"],
                    c["mean"],
                    f"[{_fmt(c['low'])}, {_fmt(c['high'])}]",
                    None if c["optimism"] is None else f"{c['optimism']:+.4g}",
                    None
                    if not cmp
                    else f"{cmp['effect']:+.4g} [{_fmt(cmp['low'], '+.4g')}, "
                    f"{_fmt(cmp['high'], '+.4g')}]",
                    None if not cmp else f"{cmp['p_adjusted']:.3g}",
                    cmp.get("verdict", "-"),
                    len(c.get("failures", [])),
                ]
            )
        doc.table(
            [
                "candidate",
                "search value",
                "held-out mean",
                "interval",
                "optimism",
                "effect vs baseline [interval]",
                "p (adjusted)",
                "verdict",
                "failed runs",
            ],
            rows,
        )
        if reeval.get("mean_optimism") is not None:
            doc.para(
                f"Winner's curse: mean optimism {reeval['mean_optimism']:+.4g} "
                f"({optimism_definition(reeval['direction'])})."
            )
        for c in reeval["candidates"]:
            for note in c.get("notes", []) + (c.get("comparison") or {}).get("notes", []):
                doc.para(f"{c['name']}: {note}")
    else:
        doc.para("No held-out re-evaluation is recorded (run airda.eval.reevaluate).")

    comparisons = attrs.get(COMPARISONS_ATTR, {})
    if comparisons:
        doc.heading("Attached comparisons")
        doc.table(
            ["name", "verdict", "effect", "interval", "p (adjusted)", "test", "n"],
            [
                [
                    k,
                    c["verdict"],
                    f"{c['effect']:+.4g}",
                    f"[{_fmt(c['low'], '+.4g')}, {_fmt(c['high'], '+.4g')}]",
                    f"{c['p_adjusted']:.3g}",
                    c["test"],
                    c["n_candidate"],
                ]
                for k, c in comparisons.items()
            ],
        )

    images, why_not = _plots(study, reeval, out)
    doc.heading("Plots")
    if why_not:
        doc.para(why_not)
    for name in images:
        doc.image(name, name.removesuffix(".png").replace("_", " "))

    md_path = out / "report.md"
    md_path.write_text("\n".join(doc.md), encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>airda report: {html.escape(study.name)}</title><style>{_STYLE}</style></head>"
        "<body>" + "\n".join(doc.html) + "</body></html>\n",
        encoding="utf-8",
    )
    written = {"markdown": md_path, "html": html_path}
    written.update({name: out / name for name in images})
    return written
