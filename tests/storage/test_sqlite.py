"""The SQLite storage under attack: damaged pages and hand-edited rows, read-only files and
folders, odd attribute keys, infinite reports. Each test failed before its fix."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import airda
from airda.space import Float
from airda.storage import StorageError
from tests import objectives

SPACE = {"x": Float(-3.0, 3.0)}


def _python(code: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


# ---- storage errors reach the user as StorageError naming the file -----------------------
def _hand_edit(path, sql: str, args=()) -> None:
    con = sqlite3.connect(path)
    con.execute(sql, args)
    con.commit()
    con.close()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("params", "{not json"),
        ("params", "['abc']"),
        ("params", '["abc"]'),
        ("trial_values", '["abc"]'),
        ("trial_values", "{bad"),
        ("trial_values", '{"a": 1}'),
        ("intermediate", '{"x": 1}'),
        ("intermediate", "[1]"),
        ("user_attrs", "[]"),
        ("state", "exploded"),
        ("number", "'seven'"),
    ],
)
def test_hand_edited_rows_give_a_storage_error(tmp_path, column, value):
    path = tmp_path / "s.db"
    airda.create_study("s", storage=path, space=SPACE).optimize(objectives.quadratic, n_trials=2)
    if column == "number":
        _hand_edit(path, f"UPDATE trials SET number={value} WHERE number=1")
    else:
        _hand_edit(path, f"UPDATE trials SET {column}=? WHERE number=1", (value,))
    with pytest.raises(StorageError, match=r"s\.db"):
        airda.load_study("s", storage=path).trials  # noqa: B018


def test_malformed_pages_give_a_storage_error(tmp_path):
    path = tmp_path / "s.db"
    study = airda.create_study("s", storage=path, space=SPACE)
    study.optimize(objectives.quadratic, n_trials=200)
    study.storage.close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    for i in range(2 * page + 100, len(data), 97):
        data[i] = 0xA5
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=r"s\.db"):
        airda.load_study("s", storage=path).trials  # noqa: B018


def test_study_attrs_with_bad_json_give_a_storage_error(tmp_path):
    path = tmp_path / "s.db"
    airda.create_study("s", storage=path, space=SPACE)
    _hand_edit(path, "UPDATE studies SET directions='[\"sideways\"' WHERE name='s'")
    with pytest.raises(StorageError, match=r"s\.db"):
        airda.load_study("s", storage=path)


# ---- read-only -----------------------------------------------------------------------------
def _readonly_check(path) -> None:
    code = f"""
        import os, airda
        from airda.storage import StorageError
        from tests import objectives
        from airda.space import Float
        from airda.storage.sqlite import SQLiteStorage
        # Root ignores permission bits: import what the run needs (root's own Python may be
        # unreadable to others), then become nobody.
        airda.create_study(space={{"x": Float(0, 1)}}).optimize(objectives.quadratic, n_trials=2)
        if os.geteuid() == 0:
            os.setgid(65534); os.setuid(65534)
        s = airda.load_study("s", storage={str(path)!r})
        assert len(s.trials) == 3, len(s.trials)
        print(s.best_value)
        try:
            s.optimize(objectives.quadratic, n_trials=1)
        except StorageError as exc:
            assert "read-only" in str(exc), str(exc)
            print("REFUSED", exc)
        else:
            raise SystemExit("a write to a read-only study succeeded")
        """
    out = _python(code)
    assert "REFUSED" in out.stdout


@pytest.mark.parametrize("what", ["file", "directory"])
def test_read_only_studies_can_be_read_and_refuse_writes(what):
    # Outside pytest's tmp_path, whose parent only root may enter.
    top = Path(tempfile.mkdtemp(prefix="airda-ro-"))
    try:
        folder = top / "ro"
        folder.mkdir()
        path = folder / "s.db"
        study = airda.create_study("s", storage=path, space=SPACE)
        study.optimize(objectives.quadratic, n_trials=3)
        study.storage.close()
        # Another user's study: world-readable, nobody else may write.
        os.chmod(top, 0o755)
        for p in folder.iterdir():
            os.chmod(p, 0o444)
        os.chmod(folder, 0o555 if what == "directory" else 0o777)
        _readonly_check(path)
    finally:
        os.chmod(folder, 0o755)
        shutil.rmtree(top)


# ---- keys and values ------------------------------------------------------------------------
@pytest.mark.parametrize("storage", ["memory", "sqlite"])
@pytest.mark.parametrize("key", ['a"b', "a.b", "$x", "a'b", 'a\\"', "[0]", ""])
def test_odd_attr_keys_are_stored(tmp_path, storage, key):
    where = None if storage == "memory" else tmp_path / "s.db"
    study = airda.create_study("s", storage=where, space=SPACE)
    trial = study.ask()
    trial.set_user_attr(key, 1)
    study.tell(trial, 0.5)
    study.set_user_attr(key, {"v": 2})
    again = airda.load_study("s", storage=study.storage) if where else study
    assert again.trials[0].user_attrs == {key: 1}
    assert again.user_attrs[key] == {"v": 2}


@pytest.mark.parametrize("storage", ["memory", "sqlite"])
def test_report_of_inf_is_stored(tmp_path, storage):
    where = None if storage == "memory" else tmp_path / "s.db"
    study = airda.create_study("s", storage=where, space=SPACE)
    trial = study.ask()
    trial.report(0, float("inf"))
    trial.report(1, -float("inf"))
    trial.report(2, 1.5)
    study.tell(trial, 1.0)
    again = airda.load_study("s", storage=study.storage) if where else study
    assert again.trials[0].intermediate == {0: float("inf"), 1: -float("inf"), 2: 1.5}
