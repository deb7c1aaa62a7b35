"""The program database: programs as trials, deduplication, islands with migration, diversity
cells, parent selection, and a replay from storage that rebuilds all of it."""

from __future__ import annotations

import random

import pytest

from airda.codeopt.evolve import ProgramDatabase, code_digest
from airda.codeopt.evolve._evaluate import Outcome
from airda.study import create_study, load_study

REF = "void f(double* y) {\n    y[0] = 1;\n}\n"


def variant(i: int) -> str:
    return REF.replace("y[0] = 1;", f"y[0] = 1; /* v{i} */" + " " * (i % 3))


def add(db, code, seconds, island, parent=0, kind="edit", ok=True):
    trial = db.start(code, parent=parent, island=island, proposer="t", kind=kind,
                     description=f"v {seconds}", diff="")  # fmt: skip
    out = Outcome(True, "done", None, seconds) if ok else Outcome(False, "full", "wrong output")
    return db.finish(trial, out)


def new_db(storage=None, name="db", islands=2, interval=4):
    study = create_study(name, storage=storage, direction="minimize", load_if_exists=True)
    db = ProgramDatabase(study, islands=islands, migration_interval=interval)
    if db.reference is None:
        t = db.start(REF, parent=None, island=-1, proposer="reference", kind="reference",
                     description="ref", diff="")  # fmt: skip
        db.finish(t, Outcome(True, "done", None, 1.0))
    return db


def test_dedup_ignores_whitespace():
    db = new_db()
    assert REF in db
    assert "void f(double* y) {  y[0] = 1;\n\n}" not in db  # tokens differ: "{ y" vs "{\ny"
    assert "void   f(double* y) {\n\n  y[0]   = 1;\n}" in db
    with pytest.raises(ValueError, match="evaluated before"):
        db.start("void f(double* y) {\n y[0] = 1;\n}", parent=0, island=0)
    assert code_digest(REF) == code_digest(REF.replace("    ", "\t"))


def test_islands_members_best_and_failures():
    db = new_db(islands=2, interval=100)
    a = add(db, variant(1), 0.5, 0)
    b = add(db, variant(2), 0.8, 1)
    bad = add(db, variant(3), 0.0, 0, parent=a.number, ok=False)
    assert db.best(0).number == a.number
    assert db.best(1).number == b.number
    assert db.best().number == a.number
    assert [p.number for p in db.top(0)] == [a.number, 0]  # the reference is on every island
    assert db.failures_of_children(a.number)[0].number == bad.number
    assert not bad.ok
    assert bad.error == "wrong output"
    assert bad.stage == "full"


def test_migration_moves_the_best_to_the_next_island():
    db = new_db(islands=3, interval=4)  # the reference counts: migrate after 4 programs
    a = add(db, variant(1), 0.2, 0)
    add(db, variant(2), 0.9, 1)
    assert not db.migrations
    c = add(db, variant(3), 0.5, 2)
    assert len(db) == 4
    # each island's best joins the next one; the reference is not moved
    assert (4, a.number, 1) in db.migrations
    assert (4, c.number, 0) in db.migrations
    assert a.number in db.members[1]
    assert c.number in db.members[0]
    assert db.programs[a.number].island == 0  # where it was bred does not change
    assert db.best(1).number == a.number


def test_cells_keep_one_elite_per_length_and_kind():
    db = new_db(islands=1)
    add(db, variant(1), 0.7, 0, kind="unroll")
    fast = add(db, variant(2), 0.3, 0, kind="unroll")
    other = add(db, variant(4), 0.9, 0, kind="tile")
    assert db.cells[db.cell(fast)] == fast.number
    assert db.cells[db.cell(other)] == other.number
    long = add(db, REF + "/*" + "x" * 200 + "*/\n", 0.8, 0, kind="unroll")
    assert db.cell(long) != db.cell(fast)
    assert db.cells[db.cell(long)] == long.number


def test_parent_selection_mixes_exploitation_and_exploration():
    db = new_db(islands=1)
    best = add(db, variant(1), 0.1, 0, kind="a")
    for i, kind in enumerate("bcdef", 2):
        add(db, variant(i), 0.5 + i / 10, 0, kind=kind)
    rng = random.Random(0)
    picks = [db.select_parent(0, rng).number for _ in range(400)]
    share = picks.count(best.number) / len(picks)
    assert 0.5 < share < 0.75  # exploit 0.5, plus the best's share of random picks
    assert len(set(picks)) >= 5


def test_parent_of_an_island_without_correct_programs_is_the_reference():
    db = new_db(islands=2)
    add(db, variant(1), 0.0, 1, ok=False)
    assert db.select_parent(1, random.Random(0)).number == 0


def test_replay_from_storage_rebuilds_islands_cells_and_migrations(tmp_path):
    url = tmp_path / "db.sqlite"
    db = new_db(url, islands=3, interval=3)
    for i in range(1, 9):
        add(db, variant(i), 1.0 / i, i % 3, kind="k" + str(i % 2), ok=i != 5)
    again = ProgramDatabase(load_study("db", storage=url), islands=3, migration_interval=3)
    assert again.members == db.members
    assert again.cells == db.cells
    assert again.migrations == db.migrations
    assert again.by_digest == db.by_digest
    assert again.best().number == db.best().number
    assert not again.interrupted


def test_interrupted_trials_are_listed_for_a_retry(tmp_path):
    url = tmp_path / "db.sqlite"
    db = new_db(url)
    add(db, variant(1), 0.5, 0)
    trial = db.start(variant(2), parent=0, island=1, proposer="t")
    trial.set_user_attr("interrupted", True)
    db.study.tell(trial, state=__import__("airda").trial.TrialState.FAIL, error="interrupted")
    again = ProgramDatabase(load_study("db", storage=url), islands=2)
    assert [t.number for t in again.interrupted] == [trial.number]
    assert variant(2) not in again  # not evaluated: it will be, once
