"""Tasks: examples, splits, the locked test split, metrics, loaders, builtin tasks."""

from __future__ import annotations

import json

import pytest

import airda
from airda.eval import LockedSplitError, finish_search, test_reads
from airda.prompt import Example, Task, builtin_task, exact_match, load_task, token_f1


def _task(**kw):
    ex = [Example("a", "x"), Example("b", "y")]
    return Task("t", ex, ex, ex, **kw)


def test_metrics():
    assert exact_match(" Yes. ", "yes") == 1.0
    assert exact_match("no", "yes") == 0.0
    assert token_f1("the red cat", "red cat") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0


def test_empty_split_is_refused():
    with pytest.raises(ValueError, match="train split is empty"):
        Task("t", [], [Example("a", "b")], [Example("a", "b")])


def test_target_outside_labels_is_refused():
    with pytest.raises(ValueError, match=r"targets \['y'\] are not among the labels"):
        _task(labels=["x", "z"])


def test_unknown_metric_and_label_metric_without_labels():
    with pytest.raises(ValueError, match="unknown metric"):
        _task(metric="bleu")
    with pytest.raises(ValueError, match="needs labels"):
        _task(metric="label")


def test_verbalizers_must_name_labels():
    with pytest.raises(ValueError, match="not a label"):
        _task(labels=["x", "y"], verbalizers={"q": ["w"]})


def test_checker_metric_range_is_checked():
    t = _task(metric=lambda p, e: 2.0)
    with pytest.raises(ValueError, match="not in \\[0, 1\\]"):
        t.score_answer("x", t.dev[0])


def test_test_split_is_locked_and_reads_recorded():
    t = _task()
    with pytest.raises(LockedSplitError):
        t.test  # noqa: B018
    study = airda.create_study()
    with pytest.raises(LockedSplitError):
        t.read_test(study)
    finish_search(study)
    assert len(t.read_test(study)) == 2
    assert [r["n"] for r in test_reads(study)] == [2]


def test_load_jsonl_task(tmp_path):
    rows = [{"text": f"item {i}", "label": "a" if i % 2 else "b"} for i in range(20)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "task.toml").write_text(
        '[task]\nname = "demo"\ndata = "d.jsonl"\ninput = "text"\ntarget = "label"\n'
        'labels = ["a", "b"]\nsplit = [0.5, 0.25, 0.25]\n[task.verbalizers]\na = ["A", "alpha"]\n'
    )
    t = load_task(tmp_path / "task.toml")
    assert (len(t.train), len(t.dev), t.summary()["test"]) == (10, 5, 5)
    assert t.verbalizers == {"a": ["A", "alpha"], "b": ["b"]}


def test_load_task_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no task file"):
        load_task(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text('[task]\nname = "x"\ncolour = 1\n')
    with pytest.raises(ValueError, match="unknown \\[task\\] keys \\['colour'\\]"):
        load_task(tmp_path / "bad.toml")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "e.toml").write_text('[task]\ndata = "empty.jsonl"\n')
    with pytest.raises(ValueError, match="holds no examples"):
        load_task(tmp_path / "e.toml")
    (tmp_path / "rows.csv").write_text("q,a\n1,2\n")
    (tmp_path / "c.toml").write_text('[task]\ndata = "rows.csv"\n')
    with pytest.raises(ValueError, match="lacks 'input' or 'target'"):
        load_task(tmp_path / "c.toml")


def test_builtin_tasks_are_seeded_and_labelled():
    a, b = builtin_task("sentiment", n=40, seed=3), builtin_task("sentiment", n=40, seed=3)
    assert a.train == b.train
    assert a.labels == ["positive", "negative"]
    for name in ("topic", "parity", "syllogism", "emotion", "language", "category"):
        t = builtin_task(name, n=24)
        assert t.labels
        assert all(e.target in t.labels for e in t.train + t.dev)
    with pytest.raises(ValueError, match="unknown builtin task"):
        builtin_task("chess")
