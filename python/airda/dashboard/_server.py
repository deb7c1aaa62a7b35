"""The dashboard's HTTP server: the pages (one HTML shell and its script, shipped in the
package), plotly.js read from the installed plotly package, and a JSON API under ``/api/``.

Every request only reads the storage (see :mod:`airda.dashboard._source`). Plots are drawn by
:mod:`airda.viz` (``backend="plotly"``) from a study's cached trials, sampled above
``max_trials``, and kept until the study's sequence number moves (importance, the costly one,
at most every 10 s).
"""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import math
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from airda.dashboard._source import ReadOnlySource, StudyCache, open_read_only
from airda.storage import StudyNotFoundError
from airda.trial import FrozenTrial, TrialState
from airda.viz import MAX_TRIALS

__all__ = ["PLOTS", "DashboardServer", "is_loopback"]

STATIC = Path(__file__).resolve().parent / "static"
PLOTS = ("history", "parallel", "slice", "contour", "importance", "intermediate", "pareto", "front")
_SLOW_PLOTS = {"importance": 10.0}  # seconds a drawn plot is kept while the study changes
_POLL_MIN_AGE = 0.5  # a study is read again at most this often, however many pages poll
_LIGHT_WAIT_S = 10.0  # a history request waits this long for the first read's light view
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NotReady(Exception):
    """The study's first read is still running: the client asks again."""


class DashboardServer(ThreadingHTTPServer):
    """The dashboard over one storage, serving on ``host:port`` (port 0: a free one).

    Args:
        storage: a URL or path (opened read-only) or a :class:`ReadOnlySource`.
        host: a loopback address unless `allow_remote`.
        max_trials: plots of larger studies draw a sample of this many trials.

    Example:
        >>> import threading, json, urllib.request, tempfile, os
        >>> import airda
        >>> from airda.space import Float
        >>> from airda.dashboard import DashboardServer
        >>> path = os.path.join(tempfile.mkdtemp(), "s.db")
        >>> study = airda.create_study(name="demo", space={"x": Float(0, 1)}, storage=path)
        >>> study.optimize(lambda t: t["x"], n_trials=3)
        >>> server = DashboardServer(path, port=0)
        >>> threading.Thread(target=server.serve_forever, daemon=True).start()
        >>> with urllib.request.urlopen(server.url + "api/studies") as r:
        ...     [s["name"] for s in json.load(r)["studies"]]
        ['demo']
        >>> server.shutdown(); server.server_close()
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        storage: Any,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        allow_remote: bool = False,
        max_trials: int = MAX_TRIALS,
    ):
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"--host {host} would serve the storage to other machines; "
                "use 127.0.0.1 or pass --allow-remote"
            )
        self.source = storage if isinstance(storage, ReadOnlySource) else open_read_only(storage)
        self.max_trials = max_trials
        self._caches: dict[str, StudyCache] = {}
        self._plots: dict[tuple[Any, ...], tuple[int, float, bytes]] = {}
        self._nas: dict[str, tuple[int, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{port}/"

    # ---- studies -----------------------------------------------------------------------------
    def cache(self, name: str) -> StudyCache:
        """The study's cache; its first read starts in the background."""
        with self._lock:
            cache = self._caches.get(name)
            if cache is None:
                record = self.source.get_study(name)  # StudyNotFoundError: a 404
                cache = StudyCache(self.source, name, record)
                self._caches[name] = cache
                threading.Thread(target=self._first_read, args=(cache,), daemon=True).start()
        return cache

    def _first_read(self, cache: StudyCache) -> None:
        # The values alone first (what the first history plot draws), then every trial: a
        # history request waits for the former instead of reading it while the full read holds
        # the GIL (the two at once took twice as long).
        try:
            cache.light_view(self.max_trials)
        except Exception:  # the request reads it itself, and reports what fails
            pass
        finally:
            cache.light_ready.set()
        try:
            cache.refresh()
        except Exception as exc:  # shown to the page that asks next
            cache.error = f"{type(exc).__name__}: {exc}"

    def ready_cache(self, name: str, min_age: float = _POLL_MIN_AGE) -> StudyCache:
        cache = self.cache(name)
        if cache.error:
            raise RuntimeError(cache.error)
        if not cache.ready:
            raise _NotReady(name)
        cache.refresh(min_age)
        return cache

    def studies(self) -> list[dict[str, Any]]:
        updates = self.source.last_updates()
        out = []
        for s in self.source.list_studies():
            rec = s.record
            out.append(
                {
                    "name": rec.name,
                    "directions": list(rec.directions),
                    "n_trials": s.n_trials,
                    "states": s.states,
                    "best": list(s.best_values) if s.best_values is not None else None,
                    "created": rec.created or None,
                    "last_update": updates.get(rec.study_id),
                }
            )
        return out

    def loading(self, name: str) -> dict[str, Any]:
        cache = self.cache(name)
        return {
            "ready": cache.ready,
            "loaded": cache.loaded,
            "to_load": cache.to_load,
            "error": cache.error,
        }

    def summary(self, name: str) -> dict[str, Any]:
        cache = self.cache(name)
        rec = cache.record
        out: dict[str, Any] = {
            "name": rec.name,
            "directions": list(rec.directions),
            "params": list(rec.space) if isinstance(rec.space, dict) else [],
            "user_attrs": rec.user_attrs,
            "loading": self.loading(name),
            "max_trials": self.max_trials,
        }
        if not cache.ready:
            return out
        cache.refresh(_POLL_MIN_AGE)
        with cache.lock:
            trials = list(cache.trials.values())
            out.update(cache.summary())
        names: list[str] = list(out["params"])
        for t in trials:
            names.extend(k for k in t.params if k not in names)
        out["params"] = names
        out["has_intermediate"] = any(t.intermediate for t in trials)
        out["has_variants"] = any(_is_variant(t) for t in trials)
        out["nas"] = self.nas(name)
        out["has_eval"] = bool(_eval_attrs(cache.record.user_attrs))
        out["best"] = _best(trials, rec.directions)
        out["numeric_params"] = [
            p for p in names if all(_is_number(t.params[p]) for t in trials if p in t.params)
        ]
        return out

    def since(self, name: str, seq: int, limit: int = 1000) -> dict[str, Any]:
        """The trials written after sequence number `seq` (the last `limit` of them by number;
        ``n_changed`` says how many there were), the study's counts, and the sequence number
        to ask from next time. ``seq=0``: the whole study, from the server's cache."""
        cache = self.ready_cache(name)
        if seq <= 0:
            with cache.lock:
                trials, now = list(cache.trials.values()), cache.seq
        else:
            trials, now = cache.source.get_trials(cache.record.study_id, seq)
        trials.sort(key=lambda t: t.number)
        with cache.lock:
            out = cache.summary()
        out["has_eval"] = bool(_eval_attrs(cache.record.user_attrs))
        out["n_changed"] = len(trials)
        out["trials"] = [_trial_json(t) for t in trials[max(0, len(trials) - limit) :]]
        out["seq"] = now
        return out

    def plot(self, name: str, kind: str, query: dict[str, str]) -> bytes:
        if kind not in PLOTS:
            raise KeyError(f"no plot {kind!r}; plots: {', '.join(PLOTS)}")
        from airda import viz

        params = [p for p in query.get("params", "").split(",") if p] or None
        objective = int(query.get("objective", "0"))
        # PED-ANOVA by default: fANOVA's random forest (scikit-learn, with pandas and pyarrow
        # behind it) adds about 150 MB to the server; ?evaluator=fanova asks for it.
        evaluator = query.get("evaluator", "ped-anova")
        if evaluator not in ("ped-anova", "fanova"):
            raise ValueError(f"evaluator is 'ped-anova' or 'fanova', got {evaluator!r}")
        cache = self.cache(name)
        partial = False
        if not cache.ready:
            if kind != "history":
                raise _NotReady(name)
            cache.light_ready.wait(_LIGHT_WAIT_S)
            view = cache.light_view(self.max_trials)  # values only, while trials load
            if view is None:
                raise _NotReady(name)
            seq, partial = -1, True
        else:
            cache.refresh(_POLL_MIN_AGE)
            seq = cache.seq
            key = (name, kind, tuple(params or ()), objective, evaluator, query.get("cost"))
            hit = self._plots.get(key)
            if hit is not None and (
                hit[0] == seq or time.monotonic() - hit[1] < _SLOW_PLOTS.get(kind, 0.0)
            ):
                return hit[2]
            with cache.lock:
                view = cache.view(self.max_trials)
        kwargs: dict[str, Any] = {"backend": "plotly", "max_trials": None}
        if kind in ("history", "parallel", "slice", "contour", "importance", "front"):
            kwargs["objective"] = objective
        if kind == "front" and query.get("cost"):
            kwargs["cost"] = query["cost"]
        if kind in ("parallel", "slice", "contour", "importance") and params:
            kwargs["params"] = params
        if kind == "importance":
            kwargs["evaluator"] = evaluator
        draw = {
            "history": viz.plot_history,
            "parallel": viz.plot_parallel_coordinates,
            "slice": viz.plot_slice,
            "contour": viz.plot_contour,
            "importance": viz.plot_importance,
            "intermediate": viz.plot_intermediate_values,
            "pareto": viz.plot_pareto_front,
            "front": viz.plot_cost_front,
        }[kind]
        fig = draw(view, **kwargs)
        import plotly.io as pio

        head = json.dumps(
            {"seq": seq, "partial": partial, "shown": len(view.trials), "total": view.n_total}
        )
        # The figure's JSON as plotly writes it (numpy arrays included), spliced in unparsed.
        body = (head[:-1] + ', "figure": ' + pio.to_json(fig) + "}").encode()
        if not partial:
            key = (name, kind, tuple(params or ()), objective, evaluator, query.get("cost"))
            self._plots[key] = (
                seq,
                time.monotonic(),
                body,
            )
        return body

    # ---- architecture searches and evaluation reports ---------------------------------------
    def nas(self, name: str) -> dict[str, Any] | None:
        """What kind of architecture search the study is (``airda.viz.nas_kind``: "nb201" or
        "choices") and the cost attributes its trials record; None for any other study.
        Computed once per sequence number."""
        from airda import viz

        cache = self.ready_cache(name)
        hit = self._nas.get(name)
        if hit is not None and hit[0] == cache.seq:
            return hit[1]
        with cache.lock:
            view, seq = cache.view(self.max_trials), cache.seq
        kind = viz.nas_kind(view)
        info = None if kind is None else {"kind": kind, "costs": viz.cost_attributes(view.trials)}
        self._nas[name] = (seq, info)
        return info

    def architecture(self, name: str, query: dict[str, str]) -> dict[str, Any]:
        """One trial's architecture: ``?trial=N``, else the best complete trial (of the first
        objective). An NB201 cell comes as an SVG drawn here (``svg``) with its arch string;
        any other architecture as its choices (``params``). ``costs``: the trial's cost
        attributes."""
        from airda import viz

        info = self.nas(name)
        if info is None:
            raise ValueError(f"study {name!r} is not an architecture search (docs/dashboard.md)")
        cache = self.ready_cache(name)
        with cache.lock:
            trials = dict(cache.trials)
        directions = cache.record.directions
        if query.get("trial", "") != "":
            number = int(query["trial"])
            if number not in trials:
                raise ValueError(f"study {name!r} has no trial {number}")
            trial = trials[number]
        else:
            done = [
                t
                for t in trials.values()
                if t.state is TrialState.COMPLETE and t.values and t.feasible
            ]
            if not done:
                raise ValueError("no complete feasible trial yet: give ?trial=N")
            sign = 1.0 if directions[0] == "minimize" else -1.0
            trial = min(done, key=lambda t: (sign * t.values[0], t.number))
        out: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.value,
            "values": [_clean(v) for v in trial.values] if trial.values is not None else None,
            "kind": info["kind"],
            "params": {k: _clean(v) for k, v in trial.params.items()},
            "costs": {c: trial.user_attrs[c] for c in info["costs"] if c in trial.user_attrs},
            "arch": None,
            "svg": None,
        }
        arch = viz.nb201_arch(trial) if info["kind"] == "nb201" else None
        if arch is not None:
            out["arch"] = str(arch)
            out["svg"] = viz.cell_svg(arch)
        return out

    def evaluation(self, name: str) -> dict[str, Any]:
        """The study's evaluation report as airda.eval records it on the study: attached
        comparisons (``Comparison.attach``), the held-out re-evaluation (``reevaluate``) and
        the protocol (``finish_search``, reads of the test split). Read from the storage on
        each call: they are attached after the trials ran, and move no sequence number."""
        record = self.source.get_study(name)
        attrs = _eval_attrs(record.user_attrs)
        comparisons = attrs.get("comparisons")
        rows = []
        if isinstance(comparisons, dict):
            rows = [{**c, "name": k} for k, c in comparisons.items() if isinstance(c, dict)]
        reeval = attrs.get("reevaluation")
        if isinstance(reeval, dict):
            from airda.eval._reevaluate import optimism_definition

            reeval = {**reeval, "optimism_definition": optimism_definition(reeval["direction"])}
        finished = attrs.get("finished")
        reads = attrs.get("reads")
        return {
            "comparisons": rows,
            "reevaluation": reeval if isinstance(reeval, dict) else None,
            "finished": finished if isinstance(finished, dict) else None,
            "test_reads": reads if isinstance(reads, list) else [],
        }

    def trials(self, name: str, query: dict[str, str]) -> tuple[list[FrozenTrial], int]:
        """The study's trials that pass the query's filters, sorted, and how many passed:
        ``state=complete,pruned``, ``p.NAME=LOW:HIGH`` (either end may be empty) or
        ``p.NAME=VALUE`` (a categorical), ``sort=number|value|-number|-value``."""
        cache = self.ready_cache(name)
        with cache.lock:
            trials = list(cache.trials.values())
        directions = cache.record.directions
        states = {s for s in query.get("state", "").split(",") if s}
        if states:
            unknown = states - {s.value for s in TrialState}
            if unknown:
                raise ValueError(f"unknown state(s) {sorted(unknown)}")
            trials = [t for t in trials if t.state.value in states]
        for key, text in query.items():
            if key.startswith("p.") and text != "":
                trials = [t for t in trials if _passes(t.params.get(key[2:]), text)]
            elif key == "value" and text != "":
                trials = [t for t in trials if t.values and _passes(t.values[0], text)]
        sort = query.get("sort", "number")
        desc = sort.startswith("-")
        if sort.lstrip("-") == "value":
            sign = -1.0 if directions[0] == "maximize" else 1.0
            trials.sort(key=lambda t: (t.values is None, sign * t.values[0] if t.values else 0))
            if desc:
                trials.reverse()
        else:
            trials.sort(key=lambda t: t.number, reverse=desc)
        return trials, len(trials)

    def variants(self, name: str) -> list[dict[str, Any]]:
        """Code variants, best first: trials with ``code``, ``speedup``, ``median_s`` (the
        profiler's, as airda.codeopt records them) or ``failure`` attributes. The speed-up is the
        trial's ``speedup`` attribute, else the study's reference median over the trial's, with
        the interval from the trial's ``speedup_ci`` or its ``ci_low_s``/``ci_high_s``."""
        cache = self.ready_cache(name)
        with cache.lock:
            trials = sorted(cache.trials.values(), key=lambda t: t.number)
        reference = cache.record.user_attrs.get("reference")
        ref = reference.get("median_s") if isinstance(reference, dict) else None
        rows = []
        for t in trials:
            if not _is_variant(t):
                continue
            a = t.user_attrs
            speedup, low, high = a.get("speedup"), None, None
            if isinstance(a.get("speedup_ci"), list) and len(a["speedup_ci"]) == 2:
                low, high = a["speedup_ci"]
            median = a.get("median_s")
            if speedup is None and _is_number(ref) and _is_number(median) and median > 0:
                speedup = ref / median
                lo_s, hi_s = a.get("ci_low_s"), a.get("ci_high_s")
                if _is_number(lo_s) and _is_number(hi_s) and lo_s > 0:
                    low, high = ref / hi_s, ref / lo_s
            failure = a.get("failure")
            if t.error:
                first = t.error.splitlines()[0]
                failure = f"{failure}: {first}" if failure else first
            rows.append(
                {
                    "number": t.number,
                    "state": t.state.value,
                    "variant": a.get("code") or ", ".join(f"{k}={v}" for k, v in t.params.items()),
                    "median_s": median,
                    "speedup": speedup,
                    "speedup_low": low,
                    "speedup_high": high,
                    "failure": failure,
                }
            )
        rows.sort(key=lambda r: (r["speedup"] is None, -(r["speedup"] or 0.0), r["number"]))
        return rows


# ---- trials as JSON and CSV -----------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _eval_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The study attributes airda.eval writes, by role (only those present)."""
    from airda.eval._compare import STUDY_ATTR as COMPARISONS
    from airda.eval._protocol import FINISHED_ATTR, READS_ATTR
    from airda.eval._reevaluate import STUDY_ATTR as REEVALUATION

    keys = {
        "comparisons": COMPARISONS,
        "reevaluation": REEVALUATION,
        "finished": FINISHED_ATTR,
        "reads": READS_ATTR,
    }
    return {role: attrs[key] for role, key in keys.items() if key in attrs}


def _is_variant(t: FrozenTrial) -> bool:
    return any(k in t.user_attrs for k in ("code", "speedup", "median_s", "failure"))


def _passes(value: Any, text: str) -> bool:
    if value is None:
        return False
    if ":" in text and _is_number(value):
        low, _, high = text.partition(":")
        return (low == "" or value >= float(low)) and (high == "" or value <= float(high))
    return str(value) == text


def _best(trials: list[FrozenTrial], directions: tuple[str, ...]) -> dict[str, Any] | None:
    done = [t for t in trials if t.state is TrialState.COMPLETE and t.values and t.feasible]
    if not done or len(directions) != 1:
        return None
    sign = 1.0 if directions[0] == "minimize" else -1.0
    best = min(done, key=lambda t: (sign * t.values[0], t.number))
    return _trial_json(best)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _trial_json(t: FrozenTrial) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state.value,
        "values": [_clean(v) for v in t.values] if t.values is not None else None,
        "params": {k: _clean(v) for k, v in t.params.items()},
        "datetime_start": t.datetime_start,
        "datetime_complete": t.datetime_complete,
        "duration": t.duration,
        "last_step": t.last_step,
        "worker": t.worker,
        "error": t.error.splitlines()[0] if t.error else None,
        "user_attrs": {k: v for k, v in t.user_attrs.items() if len(json.dumps(v)) < 200},
        "constraints": list(t.constraints) if t.constraints is not None else None,
        "feasible": t.feasible,
    }


def trials_csv(trials: list[FrozenTrial], params: list[str], n_values: int) -> str:
    """The trials as CSV: number, state, values, constraint values and feasibility (in a
    constrained study), parameters, times, error."""
    out = io.StringIO()
    w = csv.writer(out)
    vals = ["value"] if n_values == 1 else [f"value_{i}" for i in range(n_values)]
    n_c = max((len(t.constraints or ()) for t in trials), default=0)
    cons = [*(f"constraint_{i}" for i in range(n_c)), "feasible"] if n_c else []
    w.writerow(
        ["number", "state", *vals, *cons, *params, "datetime_start", "datetime_complete", "error"]
    )
    for t in trials:
        v = list(t.values) if t.values is not None else [""] * n_values
        c: list[Any] = []
        if n_c:
            given = list(t.constraints or ())
            c = [*given, *[""] * (n_c - len(given))]
            c.append(t.feasible if t.state is TrialState.COMPLETE else "")
        w.writerow(
            [
                t.number,
                t.state.value,
                *v,
                *c,
                *(t.params.get(p, "") for p in params),
                t.datetime_start if t.datetime_start is not None else "",
                t.datetime_complete if t.datetime_complete is not None else "",
                (t.error or "").splitlines()[0] if t.error else "",
            ]
        )
    return out.getvalue()


# ---- HTTP ------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line per request on the terminal

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        body = json.dumps(obj, default=str).encode()
        self._send(status, body, "application/json")

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        query = dict(urllib.parse.parse_qsl(url.query))
        try:
            if not parts or parts[0] == "study":
                self._static("index.html")
            elif parts[0] == "static" and len(parts) == 2:
                self._static(parts[1])
            elif parts[0] == "api":
                self._api(parts[1:], query)
            else:
                self._json({"error": f"no page {url.path}"}, 404)
        except StudyNotFoundError as exc:
            self._json({"error": str(exc)}, 404)
        except _NotReady:
            self._json({"error": "loading", "loading": self.server.loading(parts[2])}, 202)
        except (KeyError, ValueError, TypeError) as exc:
            # A plot that cannot be drawn from these trials says why (422), as does a bad query.
            self._json({"error": str(exc).strip("'\"")}, 422)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # the page shows it; the server goes on
            self._json({"error": f"{type(exc).__name__}: {exc}"}, 500)

    def _static(self, name: str) -> None:
        if name == "plotly.min.js":
            self._send(200, _plotly_js(), "text/javascript", {"Cache-Control": "max-age=86400"})
            return
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            self._json({"error": f"no file {name}"}, 404)
            return
        self._send(200, path.read_bytes(), _TYPES.get(path.suffix, "application/octet-stream"))

    def _api(self, parts: list[str], query: dict[str, str]) -> None:
        srv = self.server
        if parts == ["studies"]:
            self._json({"studies": srv.studies()})
            return
        if len(parts) < 2 or parts[0] != "studies":
            self._json({"error": "no such API; see /api/studies"}, 404)
            return
        name, rest = parts[1], parts[2:]
        if not rest:
            self._json(srv.summary(name))
        elif rest == ["since"]:
            self._json(srv.since(name, int(query.get("seq", "0")), int(query.get("limit", "1000"))))
        elif rest == ["loading"]:
            self._json(srv.loading(name))
        elif len(rest) == 2 and rest[0] == "plot":
            self._send(200, srv.plot(name, rest[1], query), "application/json")
        elif rest == ["trials"]:
            trials, total = srv.trials(name, query)
            offset, limit = int(query.get("offset", "0")), int(query.get("limit", "100"))
            rows = [_trial_json(t) for t in trials[offset : offset + limit]]
            self._json({"total": total, "offset": offset, "trials": rows})
        elif rest == ["trials.csv"]:
            trials, _ = srv.trials(name, query)
            summary = srv.summary(name)
            body = trials_csv(trials, summary["params"], len(summary["directions"])).encode()
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
            self._send(
                200,
                body,
                "text/csv; charset=utf-8",
                {"Content-Disposition": f'attachment; filename="{safe}-trials.csv"'},
            )
        elif rest == ["variants"]:
            self._json({"variants": srv.variants(name)})
        elif rest == ["architecture"]:
            self._json(srv.architecture(name, query))
        elif rest == ["eval"]:
            self._json(srv.evaluation(name))
        else:
            self._json({"error": f"no such API /api/studies/{name}/{'/'.join(rest)}"}, 404)


_PLOTLY_JS: bytes | None = None


def _plotly_js() -> bytes:
    """plotly.js from the installed plotly package (the viz extra): no network, no CDN."""
    global _PLOTLY_JS
    if _PLOTLY_JS is None:
        from plotly.offline import get_plotlyjs

        _PLOTLY_JS = get_plotlyjs().encode()
    return _PLOTLY_JS
