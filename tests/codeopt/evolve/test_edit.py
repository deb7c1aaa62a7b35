"""Parsing a model's reply into an edit of the parent: SEARCH/REPLACE blocks, unified diffs
placed by context, whole functions; every malformed reply an EditError, never a crash."""

from __future__ import annotations

import contextlib
import random

import pytest

from airda.codeopt.evolve import EditError, apply_reply, unified_diff

PARENT = """#include <math.h>

static double sq(double v) { return v * v; }

void norm(double* y, const double* x, int n) {
    double s = 0.0;
    for (int i = 0; i < n; ++i) {
        s += sq(x[i]);
    }
    for (int i = 0; i < n; ++i) {
        y[i] = x[i] / sqrt(s);
    }
}
"""

PY_PARENT = """import math


def helper(v):
    return v * v


def norm(xs):
    s = 0.0
    for v in xs:
        s += helper(v)
    return [v / math.sqrt(s) for v in xs]
"""


def sr(search: str, replace: str, marks: tuple[str, str, str] = ("<" * 7, "=" * 7, ">" * 7)) -> str:
    a, b, c = marks
    return f"{a} SEARCH\n{search}\n{b}\n{replace}\n{c} REPLACE"


def test_one_search_replace_block():
    reply = "Hoist the square root.\n" + sr(
        "        y[i] = x[i] / sqrt(s);", "        y[i] = x[i] * inv;"
    )
    edit = apply_reply(reply, PARENT, "c", "norm")
    assert edit.kind == "search-replace"
    assert edit.parts == 1
    assert "y[i] = x[i] * inv;" in edit.code
    assert "/ sqrt(s)" not in edit.code


def test_several_blocks_applied_in_order():
    reply = "\n\n".join(
        [
            sr("    double s = 0.0;", "    double s = 0.0, inv;"),
            sr(
                "    for (int i = 0; i < n; ++i) {\n        y[i] = x[i] / sqrt(s);",
                "    inv = 1.0 / sqrt(s);\n    for (int i = 0; i < n; ++i) {\n"
                "        y[i] = x[i] * inv;",
            ),
        ]
    )
    edit = apply_reply(reply, PARENT, "c", "norm")
    assert edit.parts == 2
    assert "double s = 0.0, inv;" in edit.code
    assert edit.code.index("inv = 1.0 / sqrt(s);") < edit.code.index("y[i] = x[i] * inv;")


def test_search_with_wrong_indentation_and_trailing_spaces_still_applies():
    reply = sr("y[i] = x[i] / sqrt(s);   ", "        y[i] = x[i] * (1.0 / sqrt(s));")
    edit = apply_reply(reply, PARENT, "c", "norm")
    assert "(1.0 / sqrt(s))" in edit.code


def test_fuzzy_search_tolerates_a_small_slip():
    # the model copied "++i" as "i++": close enough to place the edit
    reply = sr(
        "    for (int i = 0; i < n; i++) {\n        s += sq(x[i]);",
        "    for (int i = 0; i < n; ++i) {\n        s += x[i] * x[i];",
    )
    edit = apply_reply(reply, PARENT, "c", "norm")
    assert "s += x[i] * x[i];" in edit.code
    assert "sq(x[i])" not in edit.code.split("norm")[1]


def test_crlf_reply_and_markers_of_other_lengths():
    reply = sr("        s += sq(x[i]);", "        s += x[i] * x[i];", ("<" * 5, "=" * 5, ">" * 9))
    edit = apply_reply(reply.replace("\n", "\r\n"), PARENT, "c", "norm")
    assert "s += x[i] * x[i];" in edit.code
    assert "\r" not in edit.code


def test_search_block_inside_a_code_fence():
    reply = "```c\n" + sr("        s += sq(x[i]);", "        s += x[i] * x[i];") + "\n```\n"
    assert "x[i] * x[i]" in apply_reply(reply, PARENT, "c", "norm").code


def test_search_that_matches_nothing_is_unparsable():
    reply = sr("    totally_other_code();\n    more();", "    x();")
    with pytest.raises(EditError, match="unparsable reply: SEARCH block 1 of 1 does not match"):
        apply_reply(reply, PARENT, "c", "norm")


def test_empty_search_block_is_unparsable():
    with pytest.raises(EditError, match="empty"):
        apply_reply(sr("   ", "int x;"), PARENT, "c", "norm")


def test_unified_diff_with_wrong_line_numbers():
    reply = """Use the reciprocal.
```diff
--- a/norm.c
+++ b/norm.c
@@ -100,3 +100,4 @@ void norm
     for (int i = 0; i < n; ++i) {
-        y[i] = x[i] / sqrt(s);
+        double inv = 1.0 / sqrt(s);
+        y[i] = x[i] * inv;
     }
```
"""
    edit = apply_reply(reply, PARENT, "c", "norm")
    assert edit.kind == "diff"
    assert edit.parts == 1
    assert "double inv = 1.0 / sqrt(s);" in edit.code


def test_unified_diff_without_fence_two_hunks_and_lost_blank_context():
    old, new = (
        PARENT,
        PARENT.replace("s += sq(x[i]);", "s += x[i] * x[i];").replace(
            "x[i] / sqrt(s)", "x[i] * (1 / sqrt(s))"
        ),
    )
    diff = unified_diff(old, new)
    # models drop the space of blank context lines
    diff = "\n".join(ln if ln.strip() else "" for ln in diff.split("\n"))
    edit = apply_reply("Here is the patch:\n" + diff, old, "c", "norm")
    assert edit.kind == "diff"
    assert edit.code == new


def test_diff_that_does_not_apply_is_unparsable():
    reply = "@@ -1,2 +1,2 @@\n-int nothing_like_this = 1;\n+int x = 2;\n"
    with pytest.raises(EditError, match="hunk 1 of 1 does not match"):
        apply_reply(reply, PARENT, "c", "norm")


def test_whole_function_in_a_fence_replaces_that_function_only():
    reply = """A single pass is not possible, but the division can go:
```c
void norm(double* y, const double* x, int n) {
    double s = 0.0;
    for (int i = 0; i < n; ++i) s += sq(x[i]);
    const double inv = 1.0 / sqrt(s);
    for (int i = 0; i < n; ++i) y[i] = x[i] * inv;
}
```
"""
    edit = apply_reply(reply, PARENT, "c", "norm")
    assert edit.kind == "function"
    assert edit.code.startswith("#include <math.h>\n\nstatic double sq(double v)")
    assert "const double inv" in edit.code
    assert edit.code.count("void norm") == 1


def test_whole_function_with_a_new_helper():
    reply = """```cpp
static inline double rs(double s) { return 1.0 / sqrt(s); }

void norm(double* y, const double* x, int n) {
    double s = 0.0;
    for (int i = 0; i < n; ++i) s += sq(x[i]);
    for (int i = 0; i < n; ++i) y[i] = x[i] * rs(s);
}
```"""
    edit = apply_reply(reply, PARENT, "c", "norm")
    assert edit.code.index("rs(double s)") < edit.code.index("void norm")
    assert edit.code.count("static double sq") == 1


def test_whole_program_in_a_fence():
    new = PARENT.replace("sq(x[i])", "x[i] * x[i]")
    edit = apply_reply(f"```c\n{new}```", PARENT, "c", "norm")
    assert edit.kind == "program"
    assert edit.code == new


def test_function_without_a_fence_and_an_unclosed_fence():
    body = "void norm(double* y, const double* x, int n) {\n    y[0] = x[0] + n;\n}\n"
    edit = apply_reply("Try this:\n" + body + "It is faster.", PARENT, "c", "norm")
    assert edit.kind == "function"
    assert "y[0] = x[0] + n;" in edit.code
    edit = apply_reply("```c\n" + body, PARENT, "c", "norm")  # cut off at max_tokens
    assert "y[0] = x[0] + n;" in edit.code


def test_python_function_replaced_by_ast():
    reply = """```python
def norm(xs):
    s = sum(v * v for v in xs)
    r = 1.0 / math.sqrt(s)
    return [v * r for v in xs]
```"""
    edit = apply_reply(reply, PY_PARENT, "python", "norm")
    assert edit.kind == "function"
    assert "def helper(v):" in edit.code
    assert "r = 1.0 / math.sqrt(s)" in edit.code
    compile(edit.code, "<edit>", "exec")


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   \n",
        "I cannot help with that.",
        "```\nno code here at all\n```",
        "<<<<<<< SEARCH\nfoo\n=======\nbar\n",  # no REPLACE marker
        "@@ broken @@\n",
        "```c\nvoid other(int x) { }\n```",  # a function the parent does not have
        "=======\n>>>>>>> REPLACE",
    ],
)
def test_malformed_replies_are_unparsable(reply):
    with pytest.raises(EditError, match=r"^unparsable reply"):
        apply_reply(reply, PARENT, "c", "norm")


def test_an_edit_that_changes_nothing_is_unparsable():
    reply = sr("        s += sq(x[i]);", "        s += sq(x[i]);")
    with pytest.raises(EditError, match="unchanged"):
        apply_reply(reply, PARENT, "c", "norm")


def test_random_garbage_never_crashes():
    rng = random.Random(0)
    alphabet = "<>=@+-` \n\tabc{}();SEARCHREPLACE#"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        with contextlib.suppress(EditError):
            apply_reply(text, PARENT, "c", "norm")
        with contextlib.suppress(EditError):
            apply_reply(text, PY_PARENT, "python", "norm")
