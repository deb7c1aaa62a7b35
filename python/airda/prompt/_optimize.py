"""Prompt optimisers run as airda studies, within an LM-call budget, ending on the locked test
split with a paired comparison against the starting prompt and the majority-class answer.

Every candidate evaluation is a trial of a durable study (storage + name: a second run with
the same name continues it): its params are the discrete choices (instruction id, demo ids,
answer format, label words, the evaluation's size), its user attrs the full prompt. Methods:

- ``ape``: the LM proposes instructions from demos; successive halving on growing dev
  minibatches keeps the best (APE, Zhou et al. 2022).
- ``opro``: the meta-prompt lists earlier instructions with their scores; the LM writes new
  ones (OPRO, Yang et al. 2023).
- ``evo-ga`` / ``evo-de``: EvoPrompt's genetic and differential-evolution operators, applied
  by the LM to instruction texts (Guo et al. 2023).
- ``fewshot``: demos bootstrapped from train (those the starting prompt answers right first),
  then airda's TPE over demo subsets and their order.
- ``mipro``: the joint search (instruction pool, demos, answer format, label words) on
  airda's TPE with minibatch evaluation, the best few re-scored on all of dev (MIPRO-like).
  Label words first: one pass over dev scores every candidate word of every label, which
  gives the exact zero-shot dev accuracy of every combination of words; the best two go on
  into the joint search.
- ``gepa``: the LM reflects on failed examples to rewrite the instruction; a rewrite that
  gains on its minibatch is scored on dev; parents from the per-example Pareto front (GEPA).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from airda._logging import Progress, get_logger
from airda.prompt._prompt import ANSWER_FORMATS, BudgetExhausted, CountedLM, EvalResult, Prompt
from airda.prompt._prompt import evaluate as _evaluate
from airda.prompt._task import Example, Task

__all__ = ["METHODS", "OptimizeResult", "optimize", "start_prompt"]

log = get_logger(__name__)

METHODS = ("ape", "opro", "evo-ga", "evo-de", "fewshot", "mipro", "gepa")


def start_prompt(task: Task, *, chat: bool = True) -> Prompt:
    """The starting prompt: the task's instruction, no demos, the ``answer`` format and each
    label's first candidate word."""
    words = {label: task.verbalizers[label][0] for label in task.labels} if task.labels else None
    return Prompt(task.instruction, (), "answer", words, chat)


@dataclass
class OptimizeResult:
    """What an optimisation run found and how it fared on the locked test split."""

    method: str
    study_name: str
    start: Prompt
    best: Prompt
    dev_start: float
    dev_best: float
    test_start: EvalResult
    test_best: EvalResult
    majority_label: str | None
    test_majority: list[float]
    vs_start: Any  # airda.eval.Comparison
    vs_majority: Any  # airda.eval.Comparison
    calls: int
    n_trials: int
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few readable lines: dev and test accuracy, the verdicts, the answer spread."""
        maj = sum(self.test_majority) / len(self.test_majority) if self.test_majority else 0.0
        lines = [
            f"method {self.method}, study {self.study_name!r}: {self.n_trials} trials, "
            f"{self.calls} LM calls",
            f"dev: start {self.dev_start:.3f} -> best {self.dev_best:.3f}",
            f"test: start {self.test_start.mean:.3f}, best {self.test_best.mean:.3f}, "
            f"majority ({self.majority_label!r}) {maj:.3f}; parse failures "
            f"{self.test_best.parse_failures}",
            f"answers of the best prompt on test: {self.test_best.spread}",
            f"best vs start: {self.vs_start}",
            f"best vs majority: {self.vs_majority}",
        ]
        return "\n".join(lines + self.notes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "method": self.method,
            "study": self.study_name,
            "start": self.start.to_dict(),
            "best": self.best.to_dict(),
            "dev_start": self.dev_start,
            "dev_best": self.dev_best,
            "test_start": self.test_start.mean,
            "test_best": self.test_best.mean,
            "test_majority": sum(self.test_majority) / max(len(self.test_majority), 1),
            "majority_label": self.majority_label,
            "spread_best": self.test_best.spread,
            "parse_failures_best": self.test_best.parse_failures,
            "vs_start": self.vs_start.to_dict(),
            "vs_majority": self.vs_majority.to_dict(),
            "calls": self.calls,
            "n_trials": self.n_trials,
        }


def _key(prompt: Prompt) -> str:
    return json.dumps(prompt.to_dict(), sort_keys=True)


_CLEAN_RE = re.compile(r"<prompt>(.*?)(?:</prompt>|$)", re.IGNORECASE | re.DOTALL)


def clean_instruction(text: str, limit: int = 400) -> str:
    """An instruction out of an LM reply: the ``<prompt>...</prompt>`` part if any, else the
    first non-empty line; quotes and an ``Instruction:`` label stripped; at most `limit` chars.

    Example:
        >>> clean_instruction('Sure! <prompt>Say if the review is positive.</prompt>')
        'Say if the review is positive.'
        >>> clean_instruction('\\n"Instruction: Add the numbers."\\nmore')
        'Add the numbers.'
    """
    m = _CLEAN_RE.search(text)
    body = m.group(1) if m else text
    lines = [ln.strip() for ln in body.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[0].strip(" \"'`*")
    line = re.sub(r"^(new\s+)?(instruction|prompt)\s*\d*\s*:\s*", "", line, flags=re.IGNORECASE)
    return line.strip(" \"'`*")[:limit]


class _Search:
    """Shared machinery: the study, the counted LM, trials, the dev memo."""

    def __init__(
        self,
        task: Task,
        lm: CountedLM,
        study: Any,
        *,
        seed: int,
        minibatch: int,
        mode: str | None,
        progress: Progress | None,
        proposal_tokens: int = 60,
    ) -> None:
        self.task, self.lm, self.study, self.seed = task, lm, study, seed
        self.root = study  # the run's own study: calls spent, pools, the result
        self.rng = random.Random(seed)
        self.minibatch = max(1, min(minibatch, len(task.dev)))
        self.mode = mode
        self.progress = progress
        self.proposal_tokens = proposal_tokens
        self._reported = 0  # calls already shown by the progress display
        self.dev: dict[str, tuple[Prompt, EvalResult]] = {}  # full-dev results by prompt key
        self.failures = 0
        self._restore()

    # ---- records -------------------------------------------------------------------------

    def _restore(self) -> None:
        """A resumed study: prompts scored on all of dev come back, with the calls spent."""
        from airda.trial import TrialState

        for t in self.study.trials:
            if t.state is not TrialState.COMPLETE or not t.user_attrs.get("full_dev"):
                continue
            prompt = Prompt.from_dict(t.user_attrs["prompt_json"])
            scores = list(t.user_attrs.get("scores", []))
            preds = list(t.user_attrs.get("predictions", [None] * len(scores)))
            self.dev[_key(prompt)] = (
                prompt,
                EvalResult(scores, preds, int(t.user_attrs.get("parse_failures", 0)), 0),
            )
        spent = int(self.root.user_attrs.get("lm_calls", 0))
        self.lm.calls += spent

    def _save_calls(self) -> None:
        self.root.set_user_attr("lm_calls", self.lm.calls)

    # ---- evaluation ----------------------------------------------------------------------

    def fits(self, n: int) -> bool:
        return self.lm.remaining is None or self.lm.remaining >= n

    def score(
        self,
        prompt: Prompt,
        examples: Sequence[Example] | None = None,
        params: dict[str, Any] | None = None,
        trial: Any = None,
    ) -> EvalResult | None:
        """Evaluate `prompt` as one trial (on all of dev when `examples` is None); None when the
        budget cannot pay for it. A prompt whose replies never parse fails its trial."""
        full = examples is None
        if full and _key(prompt) in self.dev:
            return self.dev[_key(prompt)][1]
        exs = list(self.task.dev if full else examples)  # type: ignore[arg-type]
        if not self.fits(len(exs)):
            if trial is not None:
                self.study.tell(trial, state=_fail(), error="LM-call budget spent")
            return None
        if trial is None:
            trial = self.ask_trial(params, len(exs))
        try:
            res = _evaluate(prompt, self.lm, exs, task=self.task, mode=self.mode)
        except BudgetExhausted as exc:
            self._describe(trial, prompt, full)
            self.study.tell(trial, state=_fail(), error=str(exc))
            self._save_calls()
            return None
        except Exception as exc:
            self._describe(trial, prompt, full)
            self.study.tell(trial, state=_fail(), error=f"{type(exc).__name__}: {exc}")
            self._save_calls()
            self.failures += 1
            log.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
            return None
        self.record(prompt, res, trial, full)
        return res

    def _describe(self, trial: Any, prompt: Prompt, full: bool) -> None:
        trial.set_user_attr("prompt", prompt.text())
        trial.set_user_attr("prompt_json", prompt.to_dict())
        trial.set_user_attr("full_dev", full)

    def record(self, prompt: Prompt, res: EvalResult, trial: Any, full: bool) -> None:
        """Store an evaluation of `prompt` (already paid for) as `trial`'s result."""
        self._describe(trial, prompt, full)
        trial.set_user_attr("parse_failures", res.parse_failures)
        trial.set_user_attr("spread", res.spread)
        if full:
            trial.set_user_attr("scores", res.scores)
            trial.set_user_attr("predictions", res.predictions)
        self._save_calls()
        if res.parse_failures == len(res.scores):
            self.study.tell(
                trial,
                state=_fail(),
                error=f"no parsable answer in {len(res.scores)} replies (parse failures: all)",
            )
            self.failures += 1
        else:
            self.study.tell(trial, res.mean)
        if full:
            self.dev[_key(prompt)] = (prompt, res)
        if self.progress is not None:
            delta, self._reported = self.lm.calls - self._reported, self.lm.calls
            self.progress.update(max(delta, 0), best=round(self.best_dev()[1], 3))

    def ask_trial(self, params: dict[str, Any] | None, n: int) -> Any:
        """A new trial of the current study with `params` as its choices (``n``: how many
        examples its evaluation covers)."""
        p = dict(params or {})
        p.setdefault("n", n)
        names = set(self.study.space.names) if len(self.study.space) else None
        if names is None:
            trial = self.study.ask(fixed=p)
            trial.accessed.update(p)  # define-by-run: the given choices are the params
            return trial
        trial = self.study.ask(fixed={k: v for k, v in p.items() if k in names})
        for k, v in p.items():
            if k not in names:
                trial.set_user_attr(k, v)
        return trial

    def minibatch_of(
        self, k: int | None = None, pool: Sequence[Example] | None = None
    ) -> list[Example]:
        pool = list(self.task.dev if pool is None else pool)
        k = min(k or self.minibatch, len(pool))
        return self.rng.sample(pool, k)

    def best_dev(self) -> tuple[Prompt | None, float]:
        if not self.dev:
            return None, -math.inf
        p, r = max(self.dev.values(), key=lambda pr: pr[1].mean)
        return p, r.mean

    # ---- LM text proposals ---------------------------------------------------------------

    def propose(self, meta_prompts: Sequence[str], temperature: float = 0.8) -> list[str]:
        """LM replies to meta-prompts (chat-rendered when possible), cleaned to instructions;
        fewer when the budget runs out."""
        n = len(meta_prompts)
        if self.lm.remaining is not None:
            n = min(n, self.lm.remaining)
        if n <= 0:
            return []
        texts = [self._chat(m) for m in meta_prompts[:n]]
        outs = self.lm.generate(
            texts,
            max_tokens=self.proposal_tokens,
            temperature=temperature,
            seed=self.rng.randrange(2**31),
        )
        self._save_calls()
        found = []
        for o in outs:
            ins = clean_instruction(str(getattr(o, "text", o)))
            if ins and len(ins) >= 4:
                found.append(ins)
        return found

    def _chat(self, text: str) -> str:
        base = self.lm.lm
        try:
            return base.render_chat([{"role": "user", "content": text}], add_generation_prompt=True)
        except (AttributeError, NotImplementedError):
            return text

    def demo_block(self, k: int = 4, out_label: str = "Output") -> str:
        exs = self.rng.sample(self.task.train, min(k, len(self.task.train)))
        return "\n\n".join(f"Input: {e.input}\n{out_label}: {e.target}" for e in exs)


def _fail() -> Any:
    from airda.trial import TrialState

    return TrialState.FAIL


# ---- the methods -------------------------------------------------------------------------


def _ape_meta(s: _Search) -> str:
    return (
        "I gave a friend an instruction. Based on the instruction they produced the following "
        f"input-output pairs:\n\n{s.demo_block()}\n\nThe instruction was:"
    )


def _run_ape(s: _Search, start: Prompt, n_proposals: int = 6) -> None:
    s.score(start, params={"instruction": 0, "stage": "start"})
    found = s.propose([_ape_meta(s) for _ in range(n_proposals)])
    pool = [start] + [
        Prompt(i, start.demos, start.answer_format, start.label_words, start.chat)
        for i in dict.fromkeys(found)
    ]
    alive = list(range(len(pool)))
    order = s.rng.sample(s.task.dev, len(s.task.dev))
    size, rung = min(len(order), max(4, s.minibatch // 2)), 0
    while len(alive) > 1 and size < len(order):
        res = {}
        for i in alive:
            r = s.score(pool[i], order[:size], {"instruction": i, "rung": rung})
            if r is None:
                return _finish_alive(s, pool, alive)
            res[i] = r.mean
        alive = sorted(alive, key=lambda i: -res[i])[: max(1, len(alive) // 2)]
        size, rung = min(len(order), size * 2), rung + 1
    _finish_alive(s, pool, alive)


def _finish_alive(s: _Search, pool: list[Prompt], alive: list[int]) -> None:
    for i in alive:
        if s.score(pool[i], params={"instruction": i, "stage": "dev"}) is None:
            break


def _opro_meta(s: _Search, start: Prompt) -> str:
    scored = sorted(s.dev.values(), key=lambda pr: pr[1].mean)[-8:]
    hist = "\n\n".join(f"text: {p.instruction}\nscore: {round(100 * r.mean)}" for p, r in scored)
    return (
        "Your task is to write an instruction for a task. Below are earlier instructions with "
        f"their scores (higher is better):\n\n{hist}\n\nExamples of the task:\n\n"
        f"{s.demo_block(3)}\n\nWrite a new instruction that differs from the old ones and "
        "scores as high as possible. Write only the instruction."
    )


def _with_instruction(p: Prompt, text: str) -> Prompt:
    return Prompt(text, p.demos, p.answer_format, p.label_words, p.chat)


def _run_opro(s: _Search, start: Prompt, per_step: int = 3) -> None:
    s.score(start, params={"instruction": 0, "stage": "start"})
    step = 0
    while s.fits(1 + len(s.task.dev)):
        step += 1
        found = s.propose([_opro_meta(s, start) for _ in range(per_step)], temperature=1.0)
        if not found:
            break
        for text in found:
            if s.score(_with_instruction(start, text), params={"step": step}) is None:
                return


_GA_META = (
    "Please follow the instruction step-by-step to generate a better prompt.\n"
    "1. Cross over the following prompts and generate a new prompt:\nPrompt 1: {a}\n"
    "Prompt 2: {b}\n2. Mutate the prompt generated in Step 1 and generate a final prompt "
    "bracketed with <prompt> and </prompt>."
)
_DE_META = (
    "Please follow the instruction step-by-step to generate a better prompt.\n"
    "1. Identify the different parts between Prompt 1 and Prompt 2:\nPrompt 1: {a}\n"
    "Prompt 2: {b}\n2. Randomly mutate the different parts.\n3. Combine the different parts "
    "with Prompt 3, selectively replace it with the mutated parts to generate a new prompt.\n"
    "Prompt 3: {best}\n4. Cross over the prompt in Step 3 with the following basic prompt and "
    "generate a final prompt bracketed with <prompt> and </prompt>:\nBasic Prompt: {x}"
)


def _initial_population(s: _Search, start: Prompt, size: int) -> list[Prompt]:
    s.score(start, params={"instruction": 0, "stage": "start"})
    have = [p for p, _ in s.dev.values()]
    if len(have) < size:
        for text in s.propose([_ape_meta(s) for _ in range(size - len(have))]):
            s.score(_with_instruction(start, text), params={"stage": "init"})
    ranked = sorted(s.dev.values(), key=lambda pr: -pr[1].mean)
    return [p for p, _ in ranked[:size]]


def _run_evo_ga(s: _Search, start: Prompt, size: int = 4) -> None:
    pop = _initial_population(s, start, size)
    gen = 0
    while len(pop) >= 2 and s.fits(1 + len(s.task.dev)):
        gen += 1
        weights = [s.dev[_key(p)][1].mean + 1e-3 for p in pop]
        metas = []
        for _ in range(size):
            a, b = s.rng.choices(pop, weights=weights, k=2)
            metas.append(_GA_META.format(a=a.instruction, b=b.instruction))
        for text in s.propose(metas, temperature=1.0):
            if s.score(_with_instruction(start, text), params={"generation": gen}) is None:
                return
        ranked = sorted(s.dev.values(), key=lambda pr: -pr[1].mean)
        pop = [p for p, _ in ranked[:size]]


def _run_evo_de(s: _Search, start: Prompt, size: int = 4) -> None:
    pop = _initial_population(s, start, size)
    gen = 0
    while len(pop) >= 3 and s.fits(1 + len(s.task.dev)):
        gen += 1
        best = max(pop, key=lambda p: s.dev[_key(p)][1].mean)
        for i, x in enumerate(list(pop)):
            a, b = s.rng.sample([p for p in pop if p is not x], 2)
            found = s.propose(
                [
                    _DE_META.format(
                        a=a.instruction, b=b.instruction, best=best.instruction, x=x.instruction
                    )
                ],
                temperature=1.0,
            )
            if not found:
                return
            child = _with_instruction(start, found[0])
            r = s.score(child, params={"generation": gen, "member": i})
            if r is None:
                return
            if r.mean > s.dev[_key(x)][1].mean:
                pop[i] = child


def _bootstrap_demos(s: _Search, start: Prompt, k_max: int) -> list[Example]:
    """Train examples the starting prompt answers right come first (bootstrapped, as DSPy's
    BootstrapFewShot keeps traces that pass the metric), then the others; one per label first,
    so every label has a demo when it can."""
    train = list(s.task.train)
    s.rng.shuffle(train)
    cap = min(len(train), 4 * k_max)
    if s.lm.remaining is not None:
        cap = min(cap, max(0, s.lm.remaining // 4))
    right: list[Example] = []
    if cap > 0:
        res = _evaluate(start, s.lm, train[:cap], task=s.task, mode=s.mode)
        s._save_calls()
        right = [e for e, sc in zip(train[:cap], res.scores, strict=True) if sc >= 1.0]
    rest = [e for e in train if e not in right]
    ordered = right + rest
    if s.task.labels:
        firsts = []
        for label in s.task.labels:
            e = next((e for e in ordered if e.target == label), None)
            if e is not None:
                firsts.append(e)
        ordered = firsts + [e for e in ordered if e not in firsts]
    return ordered[: max(2 * k_max, k_max + 2)]


def _demo_space(n_pool: int, k: int) -> dict[str, Any]:
    from airda.space import Categorical

    choices = ["-"] + [str(i) for i in range(n_pool)]
    return {f"demo_{j}": Categorical(choices) for j in range(k)}


def _demos_of(params: dict[str, Any], pool: list[Example], k: int) -> tuple[Example, ...]:
    ids = []
    for j in range(k):
        v = params.get(f"demo_{j}", "-")
        if v != "-" and int(v) not in ids:
            ids.append(int(v))
    return tuple(pool[i] for i in ids)


def _tpe_loop(
    s: _Search,
    build: Callable[[dict[str, Any]], Prompt | str],
    n_top: int = 3,
) -> None:
    """Ask TPE for candidates, score each on a minibatch, then re-score the best few (by mean
    minibatch score) on all of dev."""
    agg: dict[str, list[float]] = {}
    params_of: dict[str, dict[str, Any]] = {}
    invalid = 0
    # Keep enough budget to re-score at least the best candidate on all of dev.
    while s.fits(s.minibatch + len(s.task.dev)):
        trial = s.study.ask()
        built = build(dict(trial.params))
        if isinstance(built, str):
            s.study.tell(trial, state=_fail(), error=built)
            invalid += 1
            if invalid >= 50:  # a space of mostly invalid candidates must not spin forever
                log.warning("stopping: 50 invalid candidates in a row (last: %s)", built)
                break
            continue
        invalid = 0
        key = _key(built)
        r = s.score(built, s.minibatch_of(), trial=trial)
        if r is None:
            break
        agg.setdefault(key, []).append(r.mean)
        params_of[key] = dict(trial.params)
    ranked = sorted(agg, key=lambda k: -sum(agg[k]) / len(agg[k]))
    for key in ranked[:n_top]:
        prompt = build(params_of[key])
        assert isinstance(prompt, Prompt)
        if s.score(prompt, params={**params_of[key], "stage": "dev"}) is None:
            break


def _run_fewshot(s: _Search, start: Prompt, k: int = 4) -> None:
    s.score(start, params={"stage": "start"})
    pool = _load_pool(s, "demo_pool") or _save_pool(s, "demo_pool", _bootstrap_demos(s, start, k))
    s.study = _sub_study(s, _demo_space(len(pool), k))

    def build(params: dict[str, Any]) -> Prompt:
        return Prompt(
            start.instruction,
            _demos_of(params, pool, k),
            start.answer_format,
            start.label_words,
            start.chat,
        )

    _tpe_loop(s, build)


_MAX_WORD_SETS = 20_000  # label-word combinations compared exactly; more are sampled


def _word_sets(cands: list[list[str]], fixed: tuple[str, ...], rng: random.Random) -> list[tuple]:
    """Every combination of one candidate word per label without collisions (`fixed`, the
    starting words, first); a random sample of them when there are too many."""
    total = math.prod(len(c) for c in cands)
    if total <= _MAX_WORD_SETS:
        combos = list(itertools.product(*cands))
    else:
        combos = [tuple(rng.choice(c) for c in cands) for _ in range(_MAX_WORD_SETS)]
    seen, out = set(), []
    for combo in [fixed, *combos]:
        if combo not in seen and len(set(combo)) == len(combo):
            seen.add(combo)
            out.append(combo)
    return out


def _choose_words(s: _Search, start: Prompt, top: int = 2) -> list[dict[str, str]]:
    """The `top` best sets of label words, found with one pass over dev.

    With no demos and a format that does not list the options, the label words appear only
    in the scored continuation, so one request per dev example that scores every candidate
    word of every label gives the exact dev accuracy of every combination of words (each
    example's prediction is the best-scoring word among the chosen ones). Combinations are
    ranked by dev accuracy, then by the mean log-probability of the right label among the
    chosen words. The starting prompt's own dev result comes out of the same pass when it
    is zero-shot, and the best zero-shot prompt is recorded as a candidate too. Falls back
    to the starting words (and scores the starting prompt) when there is nothing to choose,
    in generate mode, or when the budget cannot pay for the pass.
    """
    labels = list(s.task.labels or [])
    stored = s.root.user_attrs.get("word_sets")
    if stored is not None:
        return [dict(w) for w in stored]
    base_words = dict(start.label_words or {})
    cands = [
        list(dict.fromkeys([base_words.get(lab, lab), *s.task.verbalizers[lab]])) for lab in labels
    ]
    fmt = (
        start.answer_format if "{options}" not in ANSWER_FORMATS[start.answer_format] else "answer"
    )
    zero = Prompt(start.instruction, (), fmt, start.label_words, start.chat)
    dev = list(s.task.dev)
    scoring = s.mode in (None, "score") and s.task.scored and labels
    if not scoring or math.prod(len(c) for c in cands) < 2 or not s.fits(len(dev)):
        s.score(start, params={"stage": "start"})
        return [base_words] if base_words else []
    words = list(dict.fromkeys(w for c in cands for w in c))
    probe = Prompt(zero.instruction, (), fmt, {str(i): w for i, w in enumerate(words)}, zero.chat)
    render_lm = s.lm.lm if zero.chat else None
    conts = probe.continuations([str(i) for i in range(len(words))], render_lm)
    trial = s.ask_trial({"stage": "words"}, len(dev))
    try:
        rows = s.lm.score_batch([(zero.score_prefix(e.input, render_lm), conts) for e in dev])
    except Exception as exc:  # a failed pass costs its trial, not the search
        s._describe(trial, zero, True)
        s.study.tell(trial, state=_fail(), error=f"{type(exc).__name__}: {exc}")
        s._save_calls()
        s.score(start, params={"stage": "start"})
        return [base_words] if base_words else []
    lp = np.asarray(rows, dtype=np.float64)  # dev examples x candidate words
    col = {w: i for i, w in enumerate(words)}
    target = np.asarray([labels.index(e.target) for e in dev])
    fixed = tuple(base_words.get(lab, lab) for lab in labels)
    ranked = []
    for combo in _word_sets(cands, fixed, s.rng):
        sub = lp[:, [col[w] for w in combo]]
        acc = float(np.mean(np.argmax(sub, axis=1) == target))
        norm = sub - np.logaddexp.reduce(sub, axis=1, keepdims=True)
        ranked.append((acc, float(np.mean(norm[np.arange(len(dev)), target])), combo))
    ranked.sort(key=lambda r: (-r[0], -r[1]))

    def result(combo: tuple) -> tuple[Prompt, EvalResult]:
        sub = lp[:, [col[w] for w in combo]]
        preds = [labels[i] for i in np.argmax(sub, axis=1)]
        scores = [float(pr == e.target) for pr, e in zip(preds, dev, strict=True)]
        prompt = Prompt(zero.instruction, (), fmt, dict(zip(labels, combo, strict=True)), zero.chat)
        return prompt, EvalResult(scores, preds, 0, len(dev))

    best_prompt, best_res = result(ranked[0][2])
    s.record(best_prompt, best_res, trial, True)
    trial.set_user_attr("word_ranking", [[a, m, list(c)] for a, m, c in ranked[:10]])
    if _key(zero) == _key(start):
        start_prompt, start_res = result(fixed)
        if _key(start_prompt) not in s.dev:
            s.record(start_prompt, start_res, s.ask_trial({"stage": "start"}, len(dev)), True)
    else:
        s.score(start, params={"stage": "start"})
    chosen = [dict(zip(labels, c, strict=True)) for _, _, c in ranked[:top]]
    s.root.set_user_attr("word_sets", chosen)
    return chosen


def _run_mipro(s: _Search, start: Prompt, k: int = 4, n_proposals: int = 4) -> None:
    from airda.space import Categorical

    word_sets = _choose_words(s, start)
    if word_sets:
        start_words = Prompt(start.instruction, start.demos, start.answer_format, word_sets[0],
                             start.chat)  # fmt: skip
    else:
        start_words = start
    pool = _load_pool(s, "demo_pool") or _save_pool(
        s, "demo_pool", _bootstrap_demos(s, start_words, k)
    )
    instructions = s.root.user_attrs.get("instruction_pool")
    if instructions is None:
        found = s.propose([_ape_meta(s) for _ in range(n_proposals)])
        instructions = list(dict.fromkeys([start.instruction, *found]))
        s.root.set_user_attr("instruction_pool", instructions)
    space: dict[str, Any] = {
        "instruction": Categorical([str(i) for i in range(len(instructions))]),
        "format": Categorical(list(ANSWER_FORMATS)),
        **_demo_space(len(pool), k),
    }
    if len(word_sets) > 1:
        space["words"] = Categorical([str(i) for i in range(len(word_sets))])
    s.study = _sub_study(s, space)

    def build(params: dict[str, Any]) -> Prompt | str:
        words = word_sets[int(params.get("words", 0))] if word_sets else start.label_words
        return Prompt(
            instructions[int(params["instruction"])],
            _demos_of(params, pool, k),
            params["format"],
            words,
            start.chat,
        )

    _tpe_loop(s, build)


def _gepa_reflect(s: _Search, prompt: Prompt, batch: list[Example], res: EvalResult) -> str:
    lines = []
    for e, p, sc in zip(batch, res.predictions, res.scores, strict=True):
        if sc < 1.0:
            got = "no readable answer" if p is None else repr(prompt.word(p))
            lines.append(
                f"Input: {e.input}\nAssistant's answer: {got}\nCorrect answer: {prompt.word(e.target)}"
            )
    return (
        f"I gave an assistant this instruction:\n{prompt.instruction}\n\nIt got these wrong:\n\n"
        + "\n\n".join(lines[:4])
        + "\n\nWrite a better instruction that would make the assistant answer correctly. "
        "Write only the new instruction."
    )


def _run_gepa(s: _Search, start: Prompt) -> None:
    s.score(start, params={"stage": "start"})
    step = 0
    while s.fits(2 * s.minibatch + 1 + len(s.task.dev)):
        step += 1
        # Parents: prompts best on at least one dev example (the per-example Pareto front).
        cands = list(s.dev.values())
        n = len(cands[0][1].scores)
        front = {
            _key(p)
            for i in range(n)
            for p, r in cands
            if r.scores[i] >= max(rr.scores[i] for _, rr in cands) and r.scores[i] > 0
        } or {_key(cands[0][0])}
        parent = s.dev[s.rng.choice(sorted(front))][0]
        batch = s.minibatch_of(pool=s.task.train)
        r0 = s.score(parent, batch, {"step": step, "role": "parent"})
        if r0 is None:
            return
        if r0.mean >= 1.0:
            continue
        found = s.propose([_gepa_reflect(s, parent, batch, r0)], temperature=0.7)
        if not found:
            continue
        child = _with_instruction(parent, found[0])
        r1 = s.score(child, batch, {"step": step, "role": "child"})
        if r1 is None:
            return
        if r1.mean > r0.mean and s.score(child, params={"step": step, "stage": "dev"}) is None:
            return


def _load_pool(s: _Search, key: str) -> list[Example] | None:
    got = s.root.user_attrs.get(key)
    return None if got is None else [Example(a, b) for a, b in got]


def _save_pool(s: _Search, key: str, pool: list[Example]) -> list[Example]:
    s.root.set_user_attr(key, [[e.input, e.target] for e in pool])
    return pool


def _sub_study(s: _Search, space: dict[str, Any]) -> Any:
    """Re-open the run's study with a TPE strategy over `space`. The run's define-by-run study
    keeps the starting prompt and proposals; the TPE study is named after it with ``/tpe``."""
    import airda

    tpe = airda.create_study(
        f"{s.root.name}/tpe",
        storage=s.root.storage,
        space=space,
        direction="maximize",
        strategy="tpe",
        seed=s.seed,
        load_if_exists=True,
    )
    _link(s, tpe)
    return tpe


def _link(s: _Search, tpe: Any) -> None:
    """Keep the full-dev results and the call count in one place: the TPE study's trials with
    ``full_dev`` are restored like the first study's."""
    from airda.trial import TrialState

    for t in tpe.trials:
        if t.state is TrialState.COMPLETE and t.user_attrs.get("full_dev"):
            prompt = Prompt.from_dict(t.user_attrs["prompt_json"])
            scores = list(t.user_attrs.get("scores", []))
            preds = list(t.user_attrs.get("predictions", [None] * len(scores)))
            s.dev[_key(prompt)] = (prompt, EvalResult(scores, preds, 0, 0))


_RUNNERS: dict[str, Callable[[_Search, Prompt], None]] = {
    "ape": _run_ape,
    "opro": _run_opro,
    "evo-ga": _run_evo_ga,
    "evo-de": _run_evo_de,
    "fewshot": _run_fewshot,
    "mipro": _run_mipro,
    "gepa": _run_gepa,
}


def optimize(
    task: Task,
    lm: Any,
    method: str = "mipro",
    *,
    budget_calls: int | None = 300,
    storage: Any = None,
    name: str | None = None,
    seed: int = 0,
    minibatch: int = 12,
    start: Prompt | None = None,
    mode: str | None = None,
    proposal_tokens: int = 60,
    show_progress: bool | None = None,
) -> OptimizeResult:
    """Optimise a prompt for `task` on `lm` with one method, as a durable study.

    The search sees train (demos) and dev (selection) only. When it ends (the budget is
    spent or the method is done), the study's search is declared finished, and the best
    prompt by dev score and the starting prompt are evaluated on the locked test split (the
    read is recorded on the study) and compared with :func:`airda.eval.compare`, paired over
    test examples; the best prompt is also compared with always answering the majority label.

    Args:
        task: the task.
        lm: an ``airda.lm.LM`` (a ``BudgetedLM`` works too).
        method: one of :data:`METHODS`.
        budget_calls: LM calls the search may spend (one per prompt generated or per example
            scored); the final test evaluation is not counted. None: no limit (the method's
            own schedule ends it).
        storage: where the study lives (None: in memory; a path keeps it, and a second run
            with the same `name` continues it).
        name: the study's name (default ``prompt-TASK-METHOD-sSEED``).
        seed: seeds the proposals' sampling, minibatches and TPE.
        minibatch: dev examples per minibatch evaluation.
        start: the starting prompt (default :func:`start_prompt`).
        mode: "score" or "generate" (default: score label words for a classification task).
        proposal_tokens: the length limit of the LM's proposed instructions.
        show_progress: a progress bar/log lines (default: on a terminal).

    Returns:
        An :class:`OptimizeResult`.

    Raises:
        ValueError: an unknown method, or a budget too small to score the start prompt on dev.
    """
    import airda
    from airda.eval import compare, finish_search

    if method not in _RUNNERS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")
    if budget_calls is not None and budget_calls < len(task.dev):
        raise ValueError(
            f"budget_calls={budget_calls} is below the dev split's size ({len(task.dev)}): "
            "not even the starting prompt can be scored"
        )
    start = start or start_prompt(task)
    name = name or f"prompt-{task.name}-{method}-s{seed}"
    study = airda.create_study(
        name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        user_attrs={"task": task.summary(), "method": method, "budget_calls": budget_calls},
    )
    counted = lm if isinstance(lm, CountedLM) else CountedLM(lm, budget_calls)
    if show_progress is None:
        import sys

        show_progress = sys.stderr.isatty()
    with Progress(
        total=budget_calls, desc=name, unit="call", enabled=None if show_progress else False
    ) as bar:
        s = _Search(
            task,
            counted,
            study,
            seed=seed,
            minibatch=minibatch,
            mode=mode,
            progress=bar,
            proposal_tokens=proposal_tokens,
        )
        try:
            _RUNNERS[method](s, start)
        except BudgetExhausted:
            pass
        except _budget_error() as exc:  # airda.lm.BudgetExceeded from a BudgetedLM
            log.info("budget: %s", exc)
        s.study = study
        s._save_calls()
    if _key(start) not in s.dev:  # a resumed or cut run: the start still gets its dev score
        counted.budget = None
        s.score(start, params={"stage": "start"})
    best, dev_best = s.best_dev()
    assert best is not None
    finish_search(study, note=f"prompt optimisation ({method}) done")
    tpe_name = f"{name}/tpe"
    test = task.read_test(study, what="best and start prompts on test")
    eval_lm = counted.lm
    test_best = _evaluate(best, eval_lm, test, task=task, mode=mode)
    test_start = (
        test_best
        if _key(best) == _key(start)
        else _evaluate(start, eval_lm, test, task=task, mode=mode)
    )
    maj_label = task.majority()[0] if task.labels else None
    maj = (
        [float(e.target == maj_label) for e in test] if maj_label is not None else [0.0] * len(test)
    )
    vs_start = compare(test_best.scores, test_start.scores, name=f"{method} best", n_resamples=5000)
    vs_maj = compare(test_best.scores, maj, name=f"{method} best", n_resamples=5000)
    study.set_user_attr(
        "result",
        {
            "best": best.to_dict(),
            "test_best": test_best.mean,
            "test_start": test_start.mean,
            "test_majority": sum(maj) / len(maj),
            "vs_start": vs_start.to_dict(),
            "vs_majority": vs_maj.to_dict(),
        },
    )
    n_trials = len(study.trials)
    with contextlib.suppress(Exception):
        n_trials += len(airda.load_study(tpe_name, storage=study.storage).trials)
    return OptimizeResult(
        method, name, start, best, s.dev[_key(start)][1].mean, dev_best, test_start, test_best,
        maj_label, maj, vs_start, vs_maj, counted.calls, n_trials,
    )  # fmt: skip


def _budget_error() -> tuple[type[BaseException], ...]:
    try:
        from airda.lm import BudgetExceeded  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        return ()
    return (BudgetExceeded,)
