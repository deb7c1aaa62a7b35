// The airda dashboard's pages: the studies list (/) and one study (/study/NAME).
// Everything comes from the JSON API under /api/; plots are plotly figures drawn by airda.viz
// on the server. A page polls every 2 s and redraws when the study's sequence number moves.
"use strict";

const POLL_MS = 2000;
const PAGE = 50;
const main = document.getElementById("main");
const live = document.getElementById("live");

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return v.toLocaleString("en");
    return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(4) : v.toPrecision(6);
  }
  return String(v);
}

function when(t) {
  return t ? new Date(t * 1000).toLocaleString("en-GB") : "";
}

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json();
  return { status: r.status, body };
}

function api(name, rest = "") {
  return "/api/studies/" + encodeURIComponent(name) + rest;
}

function setLive(text) {
  live.textContent = text + " · updated " + new Date().toLocaleTimeString("en-GB");
}

// ---- the studies ----------------------------------------------------------------------------

async function studiesPage() {
  document.title = "Studies · airda dashboard";
  main.replaceChildren(el("h1", {}, "Studies"), el("div", { id: "studies-wrap" }));
  const draw = async () => {
    const { body } = await getJSON("/api/studies");
    const states = ["complete", "pruned", "fail", "running", "waiting"];
    const head = el("tr", {}, ...["study", "directions", "trials", ...states, "best", "last update"].map((h) => el("th", {}, h)));
    const rows = body.studies.map((s) =>
      el("tr", { class: "study-row" },
        el("td", {}, el("a", { href: "/study/" + encodeURIComponent(s.name) }, s.name)),
        el("td", {}, s.directions.join(", ")),
        el("td", { class: "num" }, fmt(s.n_trials)),
        ...states.map((k) => el("td", { class: "num state-" + k }, fmt(s.states[k] || 0))),
        el("td", { class: "num" }, s.best ? s.best.map(fmt).join(", ") : ""),
        el("td", {}, when(s.last_update))));
    const table = el("table", { id: "studies" }, el("thead", {}, head), el("tbody", {}, ...rows));
    document.getElementById("studies-wrap").replaceChildren(
      body.studies.length ? table : el("p", { class: "note" }, "No study in this storage yet."));
    setLive(body.studies.length + " studies");
  };
  await draw();
  setInterval(draw, POLL_MS);
}

// ---- one study ------------------------------------------------------------------------------

const TITLES = {
  history: "History (best so far)",
  parallel: "Parallel coordinates",
  slice: "Slice",
  contour: "Contour",
  importance: "Hyperparameter importance",
  intermediate: "Intermediate values and pruned runs",
  pareto: "Pareto front",
  front: "Accuracy/cost front",
};
// What a click on a plot's point does, by plot kind (the point's customdata: a trial number).
const ON_CLICK = {};

async function drawPlot(name, kind, query = "") {
  const div = document.getElementById("plot-" + kind);
  if (!div) return;
  const { status, body } = await getJSON(api(name, "/plot/" + kind + query));
  if (status === 200) {
    const fig = body.figure;
    fig.layout.autosize = true;
    delete fig.layout.width;
    await Plotly.react(div, fig.data, fig.layout, { displaylogo: false, responsive: true });
    div.dataset.seq = body.seq;
    if (ON_CLICK[kind] && !div.dataset.clicks) {
      div.dataset.clicks = "1";
      div.on("plotly_click", (e) => {
        const n = e.points && e.points[0] ? e.points[0].customdata : undefined;
        if (n !== undefined && n !== null) ON_CLICK[kind](n);
      });
    }
    const note = document.getElementById("note-" + kind);
    if (note) {
      note.textContent = body.partial
        ? "Drawn from the values alone while the trials load."
        : body.shown < body.total ? `A sample of ${fmt(body.shown)} of ${fmt(body.total)} trials.` : "";
    }
  } else if (status === 202) {
    setTimeout(() => drawPlot(name, kind, query), 500);
  } else {
    Plotly.purge(div);
    div.replaceChildren(el("p", { class: status === 422 ? "note" : "error" }, body.error));
  }
}

function plotSection(kind, extra) {
  return el("section", { id: "section-" + kind },
    el("h2", {}, TITLES[kind]), ...(extra ? [extra] : []),
    el("div", { class: "plot", id: "plot-" + kind }),
    el("p", { class: "note", id: "note-" + kind }));
}

async function studyPage(name) {
  document.title = name + " · airda dashboard";
  main.replaceChildren(el("h1", {}, "Study ", el("span", { id: "study-name" }, name)), el("div", { id: "loading" }));
  let summary = (await getJSON(api(name))).body;
  if (summary.error) {
    main.append(el("p", { class: "error" }, summary.error));
    return;
  }
  if (!summary.loading.ready) {
    // A large study's first read: a progress bar, and the history from the values alone.
    const bar = el("progress", { id: "progress", max: 1, value: 0 });
    const text = el("span", { id: "progress-text" });
    document.getElementById("loading").replaceChildren(el("section", {}, el("h2", {}, "Loading trials"), bar, " ", text));
    main.append(plotSection("history"));
    drawPlot(name, "history");
    while (!summary.loading.ready) {
      const l = summary.loading;
      if (l.error) { text.textContent = l.error; return; }
      bar.max = Math.max(l.to_load, 1); bar.value = l.loaded;
      text.textContent = l.to_load ? `${fmt(l.loaded)} of ${fmt(l.to_load)} trials read` : "reading the storage";
      await new Promise((r) => setTimeout(r, 300));
      summary = (await getJSON(api(name))).body;
    }
  }
  buildStudy(name, summary);
}

function buildStudy(name, summary) {
  const nObj = summary.directions.length;
  const nas = summary.nas;
  const kinds = ["history", "parallel", "slice", "contour", "importance"];
  if (summary.has_intermediate) kinds.push("intermediate");
  if (nObj === 2 || nObj === 3) kinds.push("pareto");
  if (nas && nas.costs.length) kinds.push("front");
  const numeric = summary.numeric_params;
  const selA = el("select", { id: "contour-x" }, ...summary.params.map((p) => el("option", { value: p }, p)));
  const selB = el("select", { id: "contour-y" }, ...summary.params.map((p) => el("option", { value: p }, p)));
  if (summary.params.length > 1) selB.selectedIndex = 1;
  const contourQuery = () => "?params=" + encodeURIComponent(selA.value + "," + selB.value);
  const redrawContour = () => drawPlot(name, "contour", contourQuery());
  selA.addEventListener("change", redrawContour);
  selB.addEventListener("change", redrawContour);
  const pickers = el("div", { class: "filters" }, el("label", {}, "x ", selA), el("label", {}, "y ", selB));
  const evaluator = el("select", { id: "importance-evaluator" },
    el("option", { value: "ped-anova" }, "PED-ANOVA"), el("option", { value: "fanova" }, "fANOVA (random forest)"));
  const importanceQuery = () => "?evaluator=" + evaluator.value;
  evaluator.addEventListener("change", () => drawPlot(name, "importance", importanceQuery()));
  const costSel = el("select", { id: "front-cost" }, ...(nas ? nas.costs : []).map((c) => el("option", { value: c }, c)));
  costSel.addEventListener("change", () => drawPlot(name, "front", "?cost=" + encodeURIComponent(costSel.value)));
  const extras = { contour: pickers, importance: el("div", { class: "filters" }, el("label", {}, "evaluator ", evaluator)),
    front: el("div", { class: "filters" }, el("label", {}, "cost ", costSel), el("span", { class: "note" }, "click a point to see its architecture")) };
  const queryOf = (k) => (k === "contour" ? contourQuery() : k === "importance" ? importanceQuery()
    : k === "front" ? "?cost=" + encodeURIComponent(costSel.value) : "");

  const summaryBox = el("section", { id: "summary" });
  // The front sits beside the architecture (a click on a point shows that trial's cell).
  const gridKinds = nas ? kinds.filter((k) => k !== "front") : kinds;
  const grid = el("div", { class: "grid" }, ...gridKinds.map((k) => plotSection(k, extras[k])));
  // An architecture search: the cell of the best trial, or of a trial clicked in the front or
  // the trial table.
  const arch = nas ? archSection(name) : null;
  if (arch) ON_CLICK.front = (n) => arch.load(n);
  const table = trialTable(name, summary, numeric, arch ? (n) => arch.load(n) : null);
  // Code variants (a codeopt study) come first: their table is what such a study is about.
  const variants = summary.has_variants ? variantTable(name) : null;
  let evaluation = summary.has_eval ? evalSection(name) : null;
  const nasRow = arch ? [el("div", { class: "grid" }, arch.section, ...(kinds.includes("front") ? [plotSection("front", extras.front)] : []))] : [];
  main.replaceChildren(el("h1", {}, "Study ", el("span", { id: "study-name" }, name)), summaryBox,
    ...(evaluation ? [evaluation.section] : []), ...nasRow,
    ...(variants ? [variants.section] : []), grid, table.section);

  const drawSummary = (s) => {
    const states = Object.entries(s.states).map(([k, v]) => el("span", { class: "state-" + k }, `${k} ${fmt(v)}`));
    const parts = [el("b", {}, fmt(s.n_trials) + " trials"), " (", ...states.flatMap((x, i) => (i ? [", ", x] : [x])), ")",
      " · ", s.directions.join(", ")];
    if (s.best) parts.push(" · best ", el("b", { id: "best-value" }, s.best.values.map(fmt).join(", ")), ` (trial ${s.best.number})`);
    summaryBox.replaceChildren(el("div", {}, ...parts));
  };
  const drawAll = () => {
    for (const k of kinds) drawPlot(name, k, queryOf(k));
    table.load();
    if (variants) variants.load();
    if (arch) arch.refresh();
  };
  drawSummary(summary);
  drawAll();
  if (evaluation) evaluation.load();
  let seq = summary.seq;
  setLive(`live · ${fmt(summary.n_trials)} trials`);
  setInterval(async () => {
    const { status, body } = await getJSON(api(name, "/since?seq=" + seq));
    if (status !== 200) return;
    setLive(`live · ${fmt(body.n_trials)} trials`);
    if (body.has_eval && !evaluation) {  // a report attached since the page was built
      evaluation = evalSection(name);
      summaryBox.after(evaluation.section);
    }
    if (evaluation) evaluation.load();  // attached to the study: no sequence number moves
    if (body.seq === seq) return;
    seq = body.seq;
    summary = (await getJSON(api(name))).body;
    drawSummary(summary);
    drawAll();
  }, POLL_MS);
}

function trialTable(name, summary, numeric, onRow) {
  const states = ["complete", "pruned", "fail", "running", "waiting"];
  const boxes = states.map((s) => el("input", { type: "checkbox", value: s, checked: "" }));
  const ranges = summary.params.map((p) => {
    const isNum = numeric.includes(p);
    const lo = el("input", { type: "text", "data-param": p, "data-end": "low", placeholder: isNum ? "min" : "value" });
    const hi = isNum ? el("input", { type: "text", "data-param": p, "data-end": "high", placeholder: "max" }) : null;
    return { p, lo, hi };
  });
  let offset = 0;
  const query = () => {
    const q = new URLSearchParams();
    const on = boxes.filter((b) => b.checked).map((b) => b.value);
    if (on.length < states.length) q.set("state", on.join(",") || "none");
    for (const { p, lo, hi } of ranges) {
      if (hi) { if (lo.value || hi.value) q.set("p." + p, lo.value + ":" + hi.value); }
      else if (lo.value) q.set("p." + p, lo.value);
    }
    q.set("sort", sortSel.value);
    return q;
  };
  const sortSel = el("select", { id: "trials-sort" }, ...["number", "-number", "value", "-value"].map((s) =>
    el("option", { value: s }, { number: "number ↑", "-number": "number ↓", value: "best first", "-value": "worst first" }[s])));
  const count = el("span", { id: "trials-count" });
  const csv = el("a", { id: "csv", href: api(name, "/trials.csv"), download: "" }, "CSV export");
  const body = el("tbody");
  const cols = ["number", "state", ...(summary.directions.length === 1 ? ["value"] : summary.directions.map((_, i) => "value " + i)),
    ...summary.params, "duration (s)", "error"];
  const wrap = el("div", { class: "table-wrap" },
    el("table", { id: "trials" }, el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", {}, c)))), body));
  const prev = el("button", { onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, "◀");
  const next = el("button", { onclick: () => { offset += PAGE; load(); } }, "▶");
  const apply = el("button", { id: "apply-filters", onclick: () => { offset = 0; load(); } }, "Apply filters");
  async function load() {
    const q = query();
    if (q.get("state") === "none") {
      count.textContent = "no state selected"; body.replaceChildren(); return;
    }
    csv.href = api(name, "/trials.csv?" + q.toString());
    q.set("offset", offset); q.set("limit", PAGE);
    const { status, body: r } = await getJSON(api(name, "/trials?" + q.toString()));
    if (status !== 200) { count.textContent = r.error || ""; body.replaceChildren(); return; }
    if (offset >= r.total && offset > 0) { offset = Math.max(0, r.total - PAGE); return load(); }
    count.textContent = r.total ? `trials ${fmt(offset + 1)}–${fmt(offset + r.trials.length)} of ${fmt(r.total)}` : "no trial passes the filters";
    body.replaceChildren(...r.trials.map((t) => el("tr", { class: onRow ? "trial-row clickable" : "trial-row",
      ...(onRow ? { onclick: () => onRow(t.number), title: "show this trial's architecture" } : {}) },
      el("td", { class: "num" }, t.number),
      t.feasible === false
        ? el("td", { class: "state-infeasible", title: "constraints " + JSON.stringify(t.constraints) }, t.state + " (infeasible)")
        : el("td", { class: "state-" + t.state }, t.state),
      ...(t.values ? t.values : summary.directions.map(() => null)).map((v) => el("td", { class: "num" }, fmt(v))),
      ...summary.params.map((p) => el("td", { class: "num" }, fmt(t.params[p]))),
      el("td", { class: "num" }, t.duration === null ? "" : t.duration.toFixed(2)),
      el("td", { class: "error" }, t.error || ""))));
  }
  const section = el("section", { id: "section-trials" }, el("h2", {}, "Trials"),
    el("div", { class: "filters" },
      el("span", {}, "state: ", ...boxes.flatMap((b, i) => [el("label", {}, b, states[i]), " "])),
      ...ranges.map(({ p, lo, hi }) => el("span", {}, p + ": ", lo, ...(hi ? [" – ", hi] : []))),
      el("label", {}, "sort ", sortSel), apply),
    el("div", { class: "filters" }, prev, next, count, csv), wrap);
  return { section, load };
}

function variantTable(name) {
  const body = el("tbody");
  const section = el("section", { id: "section-variants" }, el("h2", {}, "Code variants"),
    el("div", { class: "table-wrap" }, el("table", { id: "variants" },
      el("thead", {}, el("tr", {}, ...["trial", "state", "variant", "median (s)", "speed-up", "interval", "failure"].map((h) => el("th", {}, h)))), body)));
  async function load() {
    const { body: r } = await getJSON(api(name, "/variants"));
    body.replaceChildren(...(r.variants || []).map((v) => el("tr", {},
      el("td", { class: "num" }, v.number), el("td", { class: "state-" + v.state }, v.state),
      el("td", {}, String(v.variant).slice(0, 80)), el("td", { class: "num" }, fmt(v.median_s)),
      el("td", { class: "num" }, v.speedup == null ? "" : fmt(v.speedup) + "×"),
      el("td", { class: "num" }, v.speedup_low == null ? "" : `${fmt(v.speedup_low)} – ${fmt(v.speedup_high)}`),
      el("td", { class: "error" }, v.failure || ""))));
  }
  return { section, load };
}

// ---- architecture searches -------------------------------------------------------------------

function archSection(name) {
  const input = el("input", { type: "number", id: "arch-trial", min: "0", placeholder: "best" });
  const best = el("button", { id: "arch-best", onclick: () => { input.value = ""; load(); } }, "best trial");
  const info = el("span", { id: "arch-info" });
  const view = el("div", { id: "arch-view" });
  input.addEventListener("change", () => load());
  async function load(number) {
    if (number !== undefined) input.value = number;
    const q = input.value === "" ? "" : "?trial=" + encodeURIComponent(input.value);
    const { status, body } = await getJSON(api(name, "/architecture" + q));
    if (status !== 200) { info.textContent = body.error || ""; view.replaceChildren(); return; }
    const which = input.value === "" ? "best trial " : "trial ";
    const parts = [el("b", {}, which + body.number), " (" + body.state + ")"];
    if (body.values) parts.push(" · value ", el("b", {}, body.values.map(fmt).join(", ")));
    for (const [k, v] of Object.entries(body.costs)) parts.push(" · " + k + " " + fmt(v));
    info.replaceChildren(...parts);
    view.dataset.trial = body.number;
    if (body.svg) {
      view.innerHTML = body.svg;  // drawn by the server (airda.viz.cell_svg), labels escaped there
    } else {
      const rows = Object.entries(body.params).map(([k, v]) => el("tr", { class: "choice-row" }, el("td", {}, k), el("td", {}, fmt(v))));
      view.replaceChildren(el("table", { id: "arch-choices" },
        el("thead", {}, el("tr", {}, el("th", {}, "choice"), el("th", {}, "value"))), el("tbody", {}, ...rows)));
    }
  }
  const section = el("section", { id: "section-architecture" }, el("h2", {}, "Architecture"),
    el("div", { class: "filters" }, el("label", {}, "trial ", input), best, info), view);
  // A new best replaces the best trial's cell; a chosen trial stays.
  return { section, load, refresh: () => { if (input.value === "") load(); } };
}

// ---- evaluation reports (airda.eval, recorded on the study) ----------------------------------

function intervalBar(low, high, effect, scale) {
  // An SVG of the interval [low, high] around zero on a common scale, the effect as a dot.
  if (low === null || high === null || !scale) return "";
  const w = 160, x = (v) => (w / 2 + (v / scale) * (w / 2 - 6)).toFixed(1);
  const color = low > 0 ? "#2e7d32" : high < 0 ? "#c62828" : "#757575";
  return `<svg class="interval" width="${w}" height="14"><line x1="${w / 2}" x2="${w / 2}" y1="0" y2="14" stroke="#bdbdbd"/>` +
    `<line x1="${x(low)}" x2="${x(high)}" y1="7" y2="7" stroke="${color}" stroke-width="3"/>` +
    `<circle cx="${x(effect)}" cy="7" r="3.5" fill="${color}"/></svg>`;
}

function verdictCell(v) {
  const cls = v === "better" ? "verdict-better" : v === "worse" ? "verdict-worse" : "verdict-none";
  return el("td", { class: "verdict " + cls }, v || "");
}

function cellWithSvg(svg) {
  const td = el("td");
  td.innerHTML = svg;  // built above from numbers only
  return td;
}

function evalSection(name) {
  const comparisons = el("div", { id: "eval-comparisons" });
  const reeval = el("div", { id: "eval-reevaluation" });
  const protocol = el("p", { class: "note", id: "eval-protocol" });
  const section = el("section", { id: "section-eval" }, el("h2", {}, "Evaluation"), protocol, comparisons, reeval);
  async function load() {
    const { status, body } = await getJSON(api(name, "/eval"));
    if (status !== 200) { protocol.textContent = body.error || ""; return; }
    const f = body.finished;
    protocol.textContent = (f ? `Search declared finished at ${when(f.time)} with ${fmt(f.n_trials)} trials` : "Search not declared finished (airda.eval.finish_search)") +
      ` · ${body.test_reads.length} read(s) of the test split.`;
    const rows = body.comparisons;
    if (rows.length) {
      const scale = Math.max(...rows.flatMap((c) => [Math.abs(c.low || 0), Math.abs(c.high || 0), Math.abs(c.effect || 0)]));
      const head = ["comparison", "verdict", "effect", "interval", "", "p", "p adjusted", "test", "n", "P(improvement)", "notes"];
      comparisons.replaceChildren(el("h3", {}, "Comparisons"), el("div", { class: "table-wrap" }, el("table", { id: "comparisons" },
        el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows.map((c) => el("tr", { class: "comparison-row" },
          el("td", {}, c.name), verdictCell(c.verdict),
          el("td", { class: "num" }, fmt(c.effect)),
          el("td", { class: "num" }, `${Math.round(c.confidence * 100)}% [${fmt(c.low)}, ${fmt(c.high)}]`),
          cellWithSvg(intervalBar(c.low, c.high, c.effect, scale)),
          el("td", { class: "num" }, fmt(c.p_value)),
          el("td", { class: "num" }, fmt(c.p_adjusted) + (c.n_comparisons > 1 ? ` (${c.correction}, ${c.n_comparisons})` : "")),
          el("td", {}, c.test), el("td", { class: "num" }, c.paired ? `${c.n_candidate} pairs` : `${c.n_candidate} vs ${c.n_baseline}`),
          el("td", { class: "num" }, fmt(c.probability_of_improvement)),
          el("td", { class: "note" }, (c.notes || []).join("; "))))))));
    } else comparisons.replaceChildren();
    const r = body.reevaluation;
    if (r) {
      const all = [...r.candidates, ...(r.baseline ? [r.baseline] : [])];
      const head = ["candidate", "search value", "held-out mean", "interval", "optimism", "effect vs baseline", "p adjusted", "verdict", "failed runs"];
      reeval.replaceChildren(el("h3", {}, `Held-out re-evaluation (split ${r.split}, ${r.seeds.length} seeds)`),
        el("div", { class: "table-wrap" }, el("table", { id: "reevaluation" },
          el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
          el("tbody", {}, ...all.map((c) => {
            const cmp = c.comparison || {};
            return el("tr", { class: "reevaluation-row" }, el("td", {}, c.name), el("td", { class: "num" }, fmt(c.search_value)),
              el("td", { class: "num" }, fmt(c.mean)), el("td", { class: "num" }, `[${fmt(c.low)}, ${fmt(c.high)}]`),
              el("td", { class: "num" }, c.optimism === null ? "" : fmt(c.optimism)),
              el("td", { class: "num" }, cmp.effect === undefined ? "" : `${fmt(cmp.effect)} [${fmt(cmp.low)}, ${fmt(cmp.high)}]`),
              el("td", { class: "num" }, fmt(cmp.p_adjusted)), cmp.verdict ? verdictCell(cmp.verdict) : el("td"),
              el("td", { class: "num" }, (c.failures || []).length));
          })))),
        ...(r.mean_optimism === null ? [] : [el("p", { class: "note" }, `Winner's curse: mean optimism ${fmt(r.mean_optimism)} (${r.optimism_definition}).`)]));
    } else reeval.replaceChildren();
  }
  return { section, load };
}

// ---- routing --------------------------------------------------------------------------------

const path = location.pathname;
if (path.startsWith("/study/")) studyPage(decodeURIComponent(path.slice("/study/".length)));
else studiesPage();
