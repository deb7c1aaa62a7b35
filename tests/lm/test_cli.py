"""``airda lm score / generate / serve`` as a user runs them (the tiny model)."""

from __future__ import annotations

import _thread
import json
import threading
import time

import pytest

from airda.cli import main
from airda.lm import HTTPLM


def test_score_prints_logprobs_and_shares(capsys, tiny):
    assert (
        main(["lm", "score", "--model", "tiny", "--prefix", "Sentiment:", " positive", " negative"])
        == 0
    )
    out = capsys.readouterr().out
    assert "' positive'" in out
    assert "%" in out
    assert (
        main(["lm", "score", "--model", "tiny", "--prefix", "Sentiment:", " positive", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    (row,) = data["scores"]
    assert row["logprob"] == pytest.approx(tiny.score("Sentiment:", [" positive"])[0], abs=1e-4)
    assert row["share"] == pytest.approx(1.0)


def test_generate_plain_chat_and_json(capsys, tiny):
    assert (
        main(["lm", "generate", "--model", "tiny", "--max-tokens", "3", "--json", "Hi", "Yo"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert [c["text"] for c in data["completions"]] == [
        c.text for c in tiny.generate(["Hi", "Yo"], max_tokens=3)
    ]
    args = [
        "lm",
        "generate",
        "--model",
        "tiny",
        "--chat",
        "--system",
        "Be brief.",
        "--max-tokens",
        "2",
    ]
    assert main([*args, "Hi"]) == 0
    conv = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]]
    assert capsys.readouterr().out == tiny.chat(conv, max_tokens=2)[0].text + "\n"


def test_errors_and_exit_codes(capsys, tmp_path):
    assert main(["lm", "score", "--model", str(tmp_path / "none"), "--prefix", "a", "b"]) == 1
    assert "not 'smollm2'" in capsys.readouterr().err
    assert main(["lm", "generate", "--model", "tiny", "--system", "x", "Hi"]) == 2
    assert "--system needs --chat" in capsys.readouterr().err
    assert main(["lm", "generate", "--model", "tiny", "--max-tokens", "-1", "Hi"]) == 1
    assert "max_tokens" in capsys.readouterr().err
    assert main(["lm", "serve", "--model", "tiny", "--port", "70000"]) == 2
    with pytest.raises(SystemExit):
        main(["lm", "score", "--model", "tiny", "b"])  # --prefix is required


def test_serve_until_ctrl_c(capsys, tiny):
    # the server runs in this (main) thread as in a shell; another thread talks to it, then
    # presses Ctrl-C (interrupt_main raises KeyboardInterrupt here, as SIGINT would)
    seen: dict[str, object] = {}

    def client() -> None:
        try:
            text = ""
            deadline = time.monotonic() + 60
            while "serving" not in text and time.monotonic() < deadline:
                time.sleep(0.05)
                text += capsys.readouterr().out
            seen["line"] = text
            url = text.split(" at ")[1].split()[0]
            remote = HTTPLM(url, "tiny-random-llama-s0", timeout=30)
            seen["completions"] = remote.generate(["Hello"], max_tokens=3)
        finally:
            _thread.interrupt_main()

    thread = threading.Thread(target=client)
    thread.start()
    code = main(["lm", "serve", "--model", "tiny", "--port", "0"])
    thread.join(30)
    assert code == 0
    assert str(seen["line"]).startswith("serving tiny-random-llama-s0 at http://127.0.0.1:")
    assert seen["completions"] == tiny.generate(["Hello"], max_tokens=3)
