"""Tasks for prompt optimisation: examples, splits with a locked test split, metrics, loaders
(JSONL/CSV/``task.toml``) and built-in tasks (templated sentiment and topic, reasoning-gym
generators mapped to label sets).

A task holds train / dev / test examples. Optimisers see train (demos) and dev (selection);
the test split is read only through :meth:`Task.read_test`, which records the read on a study
and refuses while that study's search is not declared finished
(:func:`airda.eval.finish_search`).
"""

from __future__ import annotations

import csv
import json
import random
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomllib

__all__ = [
    "BUILTIN_TASKS",
    "Example",
    "Task",
    "builtin_task",
    "exact_match",
    "load_task",
    "normalize_answer",
    "token_f1",
]


@dataclass(frozen=True)
class Example:
    """One (input, target) pair; `target` is the label for a classification task."""

    input: str
    target: str

    def __post_init__(self) -> None:
        if not isinstance(self.input, str) or not isinstance(self.target, str):
            raise TypeError(
                f"Example input and target must be strings, got {type(self.input).__name__} "
                f"and {type(self.target).__name__}"
            )


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation at the ends, single spaces: how answers are compared.

    Example:
        >>> normalize_answer("  The Answer: YES. ")
        'the answer: yes'
    """
    text = " ".join(str(text).lower().split())
    return text.strip(string.punctuation + " ")


def exact_match(prediction: str, target: str) -> float:
    """1.0 when the normalised prediction equals the normalised target, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(target))


def token_f1(prediction: str, target: str) -> float:
    """Token-overlap F1 of the normalised prediction and target (SQuAD's answer F1).

    Example:
        >>> round(token_f1("the red cat", "a red cat"), 3)
        0.667
    """
    p, t = normalize_answer(prediction).split(), normalize_answer(target).split()
    if not p or not t:
        return float(p == t)
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


_METRICS: dict[str, Callable[[str, str], float]] = {"exact": exact_match, "f1": token_f1}

Checker = Callable[[str, "Example"], float]


class Task:
    """A dataset with splits, a metric and (for classification) a label set.

    Args:
        name: the task's name (used in study names).
        train: examples demos may be drawn from.
        dev: examples optimisers select prompts on.
        test: the held-out examples, read only through :meth:`read_test`.
        labels: the label set of a classification task (every target must be one), or None
            for open-ended answers.
        metric: ``"label"`` (classification: the label words are scored by log-probability,
            no parsing), ``"exact"``, ``"f1"``, or a checker ``f(prediction, example) ->
            float in [0, 1]``. Default: ``"label"`` with labels, else ``"exact"``.
        verbalizers: for each label, candidate words that may stand for it in the answer
            (the first is the default); default: the label itself.
        instruction: the starting instruction.
        description: one line on what the task is.

    Raises:
        ValueError: an empty split, a target that is not a label (named with its split),
            fewer than two distinct labels, a metric that is not known.

    Example:
        >>> task = Task("toy", [Example("1+1", "2")], [Example("2+1", "3")], [Example("2+2", "4")])
        >>> task.metric_name, len(task.dev)
        ('exact', 1)
    """

    def __init__(
        self,
        name: str,
        train: Sequence[Example],
        dev: Sequence[Example],
        test: Sequence[Example],
        *,
        labels: Sequence[str] | None = None,
        metric: str | Checker | None = None,
        verbalizers: Mapping[str, Sequence[str]] | None = None,
        instruction: str = "",
        description: str = "",
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a task needs a non-empty name, got {name!r}")
        self.name = name
        self.train, self.dev = _examples(name, "train", train), _examples(name, "dev", dev)
        self._test = _examples(name, "test", test)
        self.labels = None if labels is None else [str(x) for x in labels]
        if self.labels is not None:
            if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
                raise ValueError(
                    f"task {name!r}: labels must be at least two distinct strings, got "
                    f"{self.labels}"
                )
            for split, exs in (("train", self.train), ("dev", self.dev), ("test", self._test)):
                bad = sorted({e.target for e in exs} - set(self.labels))
                if bad:
                    raise ValueError(
                        f"task {name!r}: {split} targets {bad[:5]} are not among the labels "
                        f"{self.labels}"
                    )
        if metric is None:
            metric = "label" if self.labels is not None else "exact"
        if isinstance(metric, str):
            if metric == "label" and self.labels is None:
                raise ValueError(f"task {name!r}: metric 'label' needs labels")
            if metric != "label" and metric not in _METRICS:
                raise ValueError(
                    f"task {name!r}: unknown metric {metric!r}; use 'label', 'exact', 'f1' or "
                    "a callable checker(prediction, example)"
                )
        elif not callable(metric):
            raise TypeError(f"task {name!r}: metric must be a name or a callable, got {metric!r}")
        self.metric = metric
        self.verbalizers = _verbalizers(name, self.labels, verbalizers)
        self.instruction = str(instruction)
        self.description = str(description)

    @property
    def metric_name(self) -> str:
        """The metric's name (a checker's function name)."""
        return (
            self.metric
            if isinstance(self.metric, str)
            else getattr(self.metric, "__name__", "checker")
        )

    @property
    def scored(self) -> bool:
        """True when answers are read by scoring label words (no generation, no parsing)."""
        return self.metric == "label"

    def score_answer(self, prediction: str, example: Example) -> float:
        """The metric of one parsed answer against its example, in [0, 1]."""
        if self.metric == "label":
            return float(prediction == example.target)
        if isinstance(self.metric, str):
            return float(_METRICS[self.metric](prediction, example.target))
        value = float(self.metric(prediction, example))
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"task {self.name!r}: the checker returned {value}, not in [0, 1]")
        return value

    @property
    def test(self) -> list[Example]:
        """Refused: the test split is read only with :meth:`read_test` (which records it)."""
        from airda.eval import LockedSplitError

        raise LockedSplitError(
            f"task {self.name!r}: the test split is locked; read it with "
            "task.read_test(study) after airda.eval.finish_search(study)"
        )

    def read_test(self, study: Any = None, what: str = "prompt test") -> list[Example]:
        """The test examples; with a study, the read is recorded on it and refused unless its
        search was declared finished (:func:`airda.eval.finish_search`)."""
        if study is not None:
            from airda.eval._protocol import record_test_read

            record_test_read(study, what, len(self._test))
        return list(self._test)

    def majority(self, examples: Sequence[Example] | None = None) -> tuple[str, float]:
        """The most common target of `examples` (default: train) and its share of dev."""
        pool = self.train if examples is None else examples
        label, _ = Counter(e.target for e in pool).most_common(1)[0]
        share = sum(e.target == label for e in self.dev) / len(self.dev)
        return label, share

    def summary(self) -> dict[str, Any]:
        """Sizes, labels and metric, JSON-able."""
        return {
            "name": self.name,
            "train": len(self.train),
            "dev": len(self.dev),
            "test": len(self._test),
            "labels": self.labels,
            "metric": self.metric_name,
        }

    def __repr__(self) -> str:
        return (
            f"Task({self.name!r}, train={len(self.train)}, dev={len(self.dev)}, "
            f"test={len(self._test)}, metric={self.metric_name!r})"
        )


def _examples(task: str, split: str, items: Sequence[Example]) -> list[Example]:
    out = []
    for i, e in enumerate(items):
        if isinstance(e, Mapping):
            e = Example(str(e["input"]), str(e["target"]))
        if not isinstance(e, Example):
            raise TypeError(f"task {task!r}: {split}[{i}] is {type(e).__name__}, not an Example")
        out.append(e)
    if not out:
        raise ValueError(f"task {task!r}: the {split} split is empty")
    return out


def _verbalizers(
    name: str, labels: list[str] | None, given: Mapping[str, Sequence[str]] | None
) -> dict[str, list[str]]:
    if labels is None:
        if given:
            raise ValueError(f"task {name!r}: verbalizers need labels")
        return {}
    out = {label: [label] for label in labels}
    for label, words in (given or {}).items():
        if label not in out:
            raise ValueError(f"task {name!r}: verbalizers name {label!r}, not a label {labels}")
        words = [str(w) for w in words if str(w).strip()]
        if not words:
            raise ValueError(f"task {name!r}: label {label!r} has no candidate words")
        out[label] = list(dict.fromkeys(words))
    return out


# ---- loaders -----------------------------------------------------------------------------


def _read_examples(path: Path, input_key: str, target_key: str) -> list[Example]:
    if not path.exists():
        raise FileNotFoundError(f"no data file {path}")
    rows: list[Mapping[str, Any]]
    if path.suffix == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{n}: not JSON: {exc}") from None
    elif path.suffix in (".csv", ".tsv"):
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t" if path.suffix == ".tsv" else ","))
    else:
        raise ValueError(f"{path}: use a .jsonl, .csv or .tsv file")
    out = []
    for n, row in enumerate(rows, 1):
        if input_key not in row or target_key not in row:
            raise ValueError(f"{path}: row {n} lacks {input_key!r} or {target_key!r}: {row}")
        out.append(Example(str(row[input_key]), str(row[target_key])))
    return out


def load_task(path: str | Path) -> Task:
    """A task from a ``task.toml`` file, or a builtin task's name.

    The file::

        [task]
        name = "sentiment"
        data = "reviews.jsonl"          # or train/dev/test = three files
        input = "text"                   # column names (default: input, target)
        target = "label"
        labels = ["positive", "negative"]  # optional: a classification task
        metric = "label"                 # label, exact, f1 (default: label with labels)
        split = [0.4, 0.3, 0.3]          # with one data file: shares of train/dev/test
        seed = 0
        instruction = "Is the review positive or negative?"
        [task.verbalizers]
        positive = ["positive", "good"]

    Or ``[task] builtin = "syllogism"`` (with optional ``n`` and ``seed``) for a built-in task.
    Paths are relative to the file.
    """
    path = Path(path)
    if not path.exists() and str(path) in BUILTIN_TASKS:
        return builtin_task(str(path))
    if not path.exists():
        raise FileNotFoundError(f"no task file {path} (and no builtin task of that name)")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    spec = doc.get("task")
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: needs a [task] table")
    known = {
        "name", "data", "train", "dev", "test", "input", "target", "labels", "metric", "split",
        "seed", "instruction", "description", "verbalizers", "builtin", "n",
    }  # fmt: skip
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"{path}: unknown [task] keys {unknown}; known: {sorted(known)}")
    if "builtin" in spec:
        return builtin_task(
            str(spec["builtin"]), n=int(spec.get("n", 120)), seed=int(spec.get("seed", 0))
        )
    base = path.parent
    ik, tk = str(spec.get("input", "input")), str(spec.get("target", "target"))
    if "data" in spec:
        data = _read_examples(base / spec["data"], ik, tk)
        if not data:
            raise ValueError(f"{path}: {spec['data']} holds no examples")
        shares = [float(x) for x in spec.get("split", [0.4, 0.3, 0.3])]
        if len(shares) != 3 or abs(sum(shares) - 1) > 1e-9 or min(shares) < 0:
            raise ValueError(f"{path}: split must be three shares summing to 1, got {shares}")
        rng = random.Random(int(spec.get("seed", 0)))
        data = list(data)
        rng.shuffle(data)
        a = round(shares[0] * len(data))
        b = a + round(shares[1] * len(data))
        train, dev, test = data[:a], data[a:b], data[b:]
    elif all(k in spec for k in ("train", "dev", "test")):
        train, dev, test = (
            _read_examples(base / spec[k], ik, tk) for k in ("train", "dev", "test")
        )
    else:
        raise ValueError(f"{path}: give [task] data = FILE, or train, dev and test files")
    return Task(
        str(spec.get("name", path.stem)),
        train,
        dev,
        test,
        labels=spec.get("labels"),
        metric=spec.get("metric"),
        verbalizers=spec.get("verbalizers"),
        instruction=str(spec.get("instruction", "")),
        description=str(spec.get("description", "")),
    )


# ---- built-in tasks ----------------------------------------------------------------------

_POS = [
    "wonderful",
    "great",
    "delightful",
    "excellent",
    "lovely",
    "fantastic",
    "superb",
    "charming",
]
_NEG = ["terrible", "awful", "boring", "dreadful", "poor", "horrible", "disappointing", "bad"]
_THINGS = ["movie", "meal", "hotel", "book", "concert", "service", "game", "trip", "show", "cafe"]
_SENT_TEMPLATES = [
    "The {thing} was {adj}.",
    "What a {adj} {thing}!",
    "I found the {thing} {adj}.",
    "Honestly, a {adj} {thing}.",
    "Our {thing} was {adj} from start to end.",
]
_TOPICS = {
    "sports": ["The team won the match", "She scored a goal", "The coach praised the players",
               "The runner finished the race", "He hit the ball over the fence"],
    "food": ["The soup was hot and salty", "He baked fresh bread", "We ordered noodles",
             "She peeled an orange", "The chef grilled the fish"],
    "weather": ["It rained all afternoon", "The wind blew hard", "Snow covered the hills",
                "The sun was very bright", "A storm is coming tonight"],
}  # fmt: skip

_EMOTIONS = {
    "joy": [
        "I just got the job and I can't stop smiling",
        "We won the lottery last night",
        "My best friend is coming to visit",
        "The party was so much fun",
        "I passed the exam with top marks",
        "The puppy licked my face and I laughed",
    ],
    "anger": [
        "He lied to me again and I am furious",
        "They scratched my car and drove off",
        "I waited two hours and nobody came",
        "Stop shouting at me right now",
        "The neighbours kept me awake all night on purpose",
        "She broke my phone and laughed",
    ],
    "fear": [
        "I heard footsteps behind me in the dark",
        "The plane shook and people screamed",
        "There is a spider on my bed",
        "The doctor wants to see me urgently",
        "Something is scratching at the window",
        "I am alone and the lights went out",
    ],
}
_LANGUAGES = {
    "English": [
        "The cat is sleeping on the chair",
        "I would like a cup of coffee",
        "Where is the train station",
        "We are going to the beach tomorrow",
        "My brother reads a book every night",
        "The weather is nice today",
    ],
    "French": [
        "Le chat dort sur la chaise",
        "Je voudrais une tasse de café",
        "Où est la gare",
        "Nous allons à la plage demain",
        "Mon frère lit un livre chaque soir",
        "Il fait beau aujourd'hui",
    ],
    "Spanish": [
        "El gato duerme en la silla",
        "Quisiera una taza de café",
        "Dónde está la estación de tren",
        "Vamos a la playa mañana",
        "Mi hermano lee un libro cada noche",
        "Hace buen tiempo hoy",
    ],
}
_CATEGORIES = {
    "animal": ["dog", "cat", "horse", "lion", "rabbit", "elephant", "tiger", "cow", "sheep",
               "monkey"],
    "fruit": ["apple", "banana", "orange", "grape", "mango", "pear", "cherry", "lemon",
              "peach", "strawberry"],
    "vehicle": ["car", "bus", "truck", "bicycle", "train", "airplane", "motorcycle", "boat",
                "taxi", "tractor"],
}  # fmt: skip
_CATEGORY_TEMPLATES = ["a {w}", "the {w}", "{w}", "one {w}", "my {w}"]


def _split3(items: list[Example], n_train: int, n_dev: int) -> tuple[list, list, list]:
    return items[:n_train], items[n_train : n_train + n_dev], items[n_train + n_dev :]


def _sentiment(n: int, seed: int) -> Task:
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        label = rng.choice(["positive", "negative"])
        adj = rng.choice(_POS if label == "positive" else _NEG)
        text = rng.choice(_SENT_TEMPLATES).format(thing=rng.choice(_THINGS), adj=adj)
        items.append(Example(text, label))
    return Task(
        "sentiment",
        *_split3(items, n // 4, n // 4),
        labels=["positive", "negative"],
        verbalizers={
            "positive": ["Yes", "positive", "good", "great", "happy"],
            "negative": ["No", "negative", "bad", "terrible", "sad"],
        },
        instruction="Is this review positive?",
        description="templated one-sentence reviews, positive or negative",
    )


def _topic(n: int, seed: int) -> Task:
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        label = rng.choice(sorted(_TOPICS))
        items.append(
            Example(rng.choice(_TOPICS[label]) + rng.choice([".", " today.", " again."]), label)
        )
    return Task(
        "topic",
        *_split3(items, n // 4, n // 4),
        labels=sorted(_TOPICS),
        verbalizers={
            "food": ["A", "food", "cooking", "eating"],
            "sports": ["B", "sports", "sport", "games"],
            "weather": ["C", "weather", "climate", "sky"],
        },
        instruction="Which topic is this sentence about: A, B or C?",
        description="templated sentences about sports, food or weather",
    )


def _gym(name: str, n: int, seed: int, **config: Any) -> list[Example]:
    import reasoning_gym

    ds = reasoning_gym.create_dataset(name, size=n, seed=seed, **config)
    return [Example(str(x["question"]).strip(), str(x["answer"]).strip()) for x in ds]


def _syllogism(n: int, seed: int) -> Task:
    items = _gym("syllogism", n, seed)
    return Task(
        "syllogism",
        *_split3(items, n // 4, n // 4),
        labels=["Yes", "No"],
        verbalizers={
            "Yes": ["Yes", "True", "Valid", "Correct"],
            "No": ["No", "False", "Invalid", "Wrong"],
        },
        instruction="Answer the logic question.",
        description="reasoning-gym syllogisms: does the conclusion follow? Yes/No",
    )


def _letter_counting(n: int, seed: int) -> Task:
    items = _gym("letter_counting", n, seed, min_words=1, max_words=3)
    labels = [str(i) for i in range(6)]
    items = [e for e in items if e.target in labels]
    return Task(
        "letter_counting",
        *_split3(items, len(items) // 4, len(items) // 4),
        labels=labels,
        verbalizers={
            "0": ["0", "zero"],
            "1": ["1", "one"],
            "2": ["2", "two"],
            "3": ["3", "three"],
            "4": ["4", "four"],
            "5": ["5", "five"],
        },
        instruction="Count the letter.",
        description="reasoning-gym letter counting in 1-3 words, answers 0-5",
    )


def _arithmetic(n: int, seed: int) -> Task:
    items = _gym(
        "basic_arithmetic", n, seed, min_terms=2, max_terms=2, min_digits=1, max_digits=1,
        operators=("+",), allow_parentheses=False, allow_negation=False,
    )  # fmt: skip
    labels = [str(i) for i in range(19)]
    items = [e for e in items if e.target in labels]
    return Task(
        "arithmetic",
        *_split3(items, len(items) // 4, len(items) // 4),
        labels=labels,
        instruction="Calculate.",
        description="reasoning-gym one-digit additions, answers 0-18",
    )


def _parity(n: int, seed: int) -> Task:
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        k = rng.randint(1, 99)
        items.append(Example(f"Is {k} an even number?", "Yes" if k % 2 == 0 else "No"))
    return Task(
        "parity",
        *_split3(items, n // 4, n // 4),
        labels=["Yes", "No"],
        verbalizers={"Yes": ["Yes", "True", "even"], "No": ["No", "False", "odd"]},
        instruction="Answer the question.",
        description="is a number from 1 to 99 even? Yes/No",
    )


def _templated(
    name: str,
    groups: dict[str, list[str]],
    n: int,
    seed: int,
    decorate: Callable[[str, random.Random], str],
) -> list[Example]:
    rng = random.Random(seed)
    labels = sorted(groups)
    return [
        Example(decorate(rng.choice(groups[label]), rng), label)
        for label in (rng.choice(labels) for _ in range(n))
    ]


def _emotion(n: int, seed: int) -> Task:
    items = _templated(
        "emotion", _EMOTIONS, n, seed, lambda s, rng: s + rng.choice([".", "!", "...", ". Wow."])
    )
    return Task(
        "emotion",
        *_split3(items, n // 4, n // 4),
        labels=sorted(_EMOTIONS),
        verbalizers={
            "anger": ["A", "anger", "angry", "mad"],
            "fear": ["B", "fear", "scared", "afraid"],
            "joy": ["C", "joy", "happy", "glad"],
        },
        instruction="Which emotion does the speaker feel: A, B or C?",
        description="templated sentences that express joy, anger or fear",
    )


def _language(n: int, seed: int) -> Task:
    items = _templated(
        "language", _LANGUAGES, n, seed, lambda s, rng: s + rng.choice([".", "?", "!"])
    )
    return Task(
        "language",
        *_split3(items, n // 4, n // 4),
        labels=sorted(_LANGUAGES),
        verbalizers={
            "English": ["1", "English", "england", "EN"],
            "French": ["2", "French", "france", "FR"],
            "Spanish": ["3", "Spanish", "spain", "ES"],
        },
        instruction="Which language is this sentence in: 1, 2 or 3?",
        description="everyday sentences in English, French or Spanish",
    )


def _category(n: int, seed: int) -> Task:
    items = _templated(
        "category", _CATEGORIES, n, seed,
        lambda w, rng: rng.choice(_CATEGORY_TEMPLATES).format(w=w).capitalize(),
    )  # fmt: skip
    return Task(
        "category",
        *_split3(items, n // 4, n // 4),
        labels=sorted(_CATEGORIES),
        verbalizers={
            "animal": ["X", "animal", "creature", "pet"],
            "fruit": ["Y", "fruit", "food", "plant"],
            "vehicle": ["Z", "vehicle", "transport", "machine"],
        },
        instruction="Is this an X, a Y or a Z?",
        description="a noun that names an animal, a fruit or a vehicle",
    )


BUILTIN_TASKS: dict[str, Callable[[int, int], Task]] = {
    "sentiment": _sentiment,
    "topic": _topic,
    "parity": _parity,
    "syllogism": _syllogism,
    "letter_counting": _letter_counting,
    "arithmetic": _arithmetic,
    "emotion": _emotion,
    "language": _language,
    "category": _category,
}


def builtin_task(name: str, *, n: int = 120, seed: int = 0) -> Task:
    """A built-in task: ``sentiment``, ``topic``, ``parity``, ``emotion``, ``language``,
    ``category`` (templated, seeded) or the
    reasoning-gym ``syllogism``, ``letter_counting``, ``arithmetic`` (offline, seeded); a
    quarter of the `n` examples for train, a quarter for dev, the rest for test.

    Example:
        >>> task = builtin_task("sentiment", n=40)
        >>> task.labels, len(task.train), len(task.dev)
        (['positive', 'negative'], 10, 10)
    """
    if name not in BUILTIN_TASKS:
        raise ValueError(f"unknown builtin task {name!r}; choose from {sorted(BUILTIN_TASKS)}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 12:
        raise ValueError(f"n must be an int >= 12 (a quarter each for train and dev), got {n!r}")
    return BUILTIN_TASKS[name](n, seed)
