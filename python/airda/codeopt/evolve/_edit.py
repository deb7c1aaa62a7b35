"""Edits from a language model's reply, applied to the parent program: SEARCH/REPLACE blocks
(the aider / OpenEvolve style), unified diffs (applied by their context, whatever their line
numbers say), or whole functions in a code block. A reply none of these fit is an
:class:`EditError` ("unparsable reply: ..."), recorded as the candidate's failure.

Example:
    >>> from airda.codeopt.evolve import apply_reply
    >>> parent = "int f(int x) {\\n    return x + 1;\\n}\\n"
    >>> reply = '''Faster:
    ... <<<<<<< SEARCH
    ...     return x + 1;
    ... =======
    ...     return 1 + x;
    ... >>>>>>> REPLACE'''
    >>> edit = apply_reply(reply, parent, "c", "f")
    >>> edit.kind, edit.code
    ('search-replace', 'int f(int x) {\\n    return 1 + x;\\n}\\n')
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

__all__ = ["Edit", "EditError", "apply_reply", "unified_diff"]


class EditError(ValueError):
    """The reply holds no edit that applies to the parent; the message says why."""


@dataclass(frozen=True)
class Edit:
    """An applied edit: the new program, how it was written (``search-replace``, ``diff``,
    ``function``, ``program``) and how many blocks/hunks/functions it had."""

    code: str
    kind: str
    parts: int


def unified_diff(old: str, new: str, a: str = "parent", b: str = "child") -> str:
    """The unified diff of two programs (3 lines of context)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), a, b, n=3
        )
    )


_SR = re.compile(
    r"^[ \t]*<{5,9}[ \t]*SEARCH[^\n]*\n(.*?)^[ \t]*={5,9}[ \t]*\n(.*?)^[ \t]*>{5,9}[ \t]*REPLACE[^\n]*$",
    re.MULTILINE | re.DOTALL,
)
_FENCE = re.compile(
    r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S
)


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4)
    return text


def _find(lines: list[str], needle: list[str], start: int = 0) -> tuple[int, int] | None:
    """Where `needle` (lines) occurs in `lines`: exactly, then ignoring whitespace at the ends
    of lines and blank lines, then the most similar window (ratio >= 0.9). (start, end)."""
    while needle and not needle[0].strip():
        needle = needle[1:]
    while needle and not needle[-1].strip():
        needle = needle[:-1]
    if not needle:
        return None
    n = len(needle)
    for i in range(start, len(lines) - n + 1):
        if lines[i : i + n] == needle:
            return i, i + n
    # whitespace-insensitive, blank lines skipped
    want = [ln.strip() for ln in needle if ln.strip()]
    if not want:
        return None
    nonblank = [i for i, ln in enumerate(lines) if ln.strip() and i >= start]
    for j in range(len(nonblank) - len(want) + 1):
        idx = nonblank[j : j + len(want)]
        if [lines[i].strip() for i in idx] == want:
            return idx[0], idx[-1] + 1
    # fuzzy: the most similar window of the same length (a model's small slips of a copy)
    target = "\n".join(want)
    best, where = 0.0, None
    for j in range(len(nonblank) - len(want) + 1):
        idx = nonblank[j : j + len(want)]
        cand = "\n".join(lines[i].strip() for i in idx)
        r = difflib.SequenceMatcher(None, cand, target, autojunk=False).ratio()
        if r > best:
            best, where = r, (idx[0], idx[-1] + 1)
    if best >= 0.9:
        return where
    return None


def _replace(code: str, search: str, replace: str) -> str | None:
    lines = code.split("\n")
    found = _find(lines, search.split("\n"))
    if found is None:
        return None
    i, j = found
    new = replace.split("\n")
    while new and not new[-1].strip():
        new = new[:-1]
    return "\n".join(lines[:i] + new + lines[j:])


def _search_replace(reply: str, parent: str) -> Edit | None:
    blocks = _SR.findall(reply)
    if not blocks:
        return None
    code = parent
    for k, (search, replace) in enumerate(blocks, 1):
        search, replace = search.rstrip("\n"), replace.rstrip("\n")
        if not search.strip():
            raise EditError(f"unparsable reply: SEARCH block {k} is empty")
        out = _replace(code, search, replace)
        if out is None:
            first = next((ln.strip() for ln in search.split("\n") if ln.strip()), "")
            raise EditError(
                f"unparsable reply: SEARCH block {k} of {len(blocks)} does not match the "
                f"parent (first line {first[:60]!r})"
            )
        code = out
    return Edit(code, "search-replace", len(blocks))


_HUNK = re.compile(r"^@@[^\n]*@@[^\n]*$", re.M)


def _diff(reply: str, parent: str) -> Edit | None:
    text = reply
    fenced = [b for _, lang, b in _FENCE.findall(reply) if lang in ("diff", "patch", "udiff")]
    if fenced:
        text = "\n".join(fenced)
    if not _HUNK.search(text):
        return None
    hunks: list[tuple[list[str], list[str]]] = []
    cur: tuple[list[str], list[str]] | None = None
    for ln in text.split("\n"):
        if ln.startswith("@@"):
            cur = ([], [])
            hunks.append(cur)
            continue
        if cur is None or ln.startswith(("--- ", "+++ ", "diff ", "index ")):
            continue
        if ln.startswith("```"):
            cur = None
            continue
        old, new = cur
        if ln.startswith("-"):
            old.append(ln[1:])
        elif ln.startswith("+"):
            new.append(ln[1:])
        elif ln.startswith(" "):
            old.append(ln[1:])
            new.append(ln[1:])
        elif ln.strip() == "":  # a blank context line whose leading space was lost
            old.append("")
            new.append("")
        elif ln.startswith("\\"):  # "\ No newline at end of file"
            continue
        else:
            cur = None  # prose after the hunk
    hunks = [h for h in hunks if h[0] != h[1]]
    if not hunks:
        return None
    code = parent
    for k, (old, new) in enumerate(hunks, 1):
        if not any(ln.strip() for ln in old):
            raise EditError(f"unparsable reply: hunk {k} has no context or removed lines")
        out = _replace(code, "\n".join(old), "\n".join(new))
        if out is None:
            raise EditError(f"unparsable reply: hunk {k} of {len(hunks)} does not match the parent")
        code = out
    return Edit(code, "diff", len(hunks))


# ---- whole functions ---------------------------------------------------------------------
def _c_functions(code: str) -> dict[str, tuple[int, int]]:
    """Top-level C/C++ function definitions: name -> (start, end) character offsets, the
    start at the beginning of the line of the name."""
    out: dict[str, tuple[int, int]] = {}
    depth = 0
    i = 0
    n = len(code)
    masked = _mask_c(code)
    while i < n:
        c = masked[i]
        if c == "{":
            if depth == 0:
                head = masked[:i]
                m = re.search(r"([A-Za-z_]\w*)\s*\([^;{}]*\)\s*(?:const\s*)?$", head)
                if m and m.group(1) not in ("if", "for", "while", "switch", "return"):
                    start = head.rfind("\n", 0, m.start()) + 1
                    # the return type may be on the line before ("static void\nf(...)")
                    prev = head.rfind("\n", 0, max(start - 1, 0)) + 1
                    if (
                        start > 0
                        and re.fullmatch(r"[ \t]*[A-Za-z_][\w\s\*&:<>,]*", head[prev : start - 1])
                        and not head[prev : start - 1].strip().endswith((";", "}"))
                    ):
                        start = prev
                    close = _match_brace(masked, i)
                    if close is None:
                        return out
                    end = close + 1
                    if end < n and code[end] == "\n":
                        end += 1
                    out[m.group(1)] = (start, end)
                    i = end
                    continue
            depth += 1
        elif c == "}":
            depth = max(depth - 1, 0)
        i += 1
    return out


def _mask_c(code: str) -> str:
    """The code with comments, strings and character literals blanked (same length)."""
    pattern = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)


def _match_brace(masked: str, i: int) -> int | None:
    depth = 0
    for j in range(i, len(masked)):
        if masked[j] == "{":
            depth += 1
        elif masked[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return None


def _py_functions(code: str) -> dict[str, tuple[int, int]] | None:
    import ast

    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    lines = code.split("\n")
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            end = node.end_lineno or node.lineno
            out[node.name] = (offsets[first - 1], min(offsets[end], len(code)))
    return out


def _functions(code: str, language: str) -> dict[str, tuple[int, int]] | None:
    # a Triton program is a Python module
    return _py_functions(code) if language in ("python", "triton") else _c_functions(code)


def _code_blocks(reply: str, language: str) -> list[str]:
    blocks = [b for _, lang, b in _FENCE.findall(reply) if lang not in ("diff", "patch")]
    if blocks:
        return blocks
    # an unclosed fence (the reply hit max_tokens), or no fence at all
    m = re.search(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n(.*)\Z", reply, re.M | re.S)
    if m:
        return [m.group(2)]
    return [reply]


def _whole(reply: str, parent: str, language: str, entry: str) -> Edit | None:
    parent_funcs = _functions(parent, language) or {}
    for block in _code_blocks(reply, language):
        funcs = _functions(block, language)
        if not funcs:
            continue
        known = [f for f in funcs if f in parent_funcs]
        if not known:
            continue
        if set(parent_funcs) <= set(funcs) and entry in funcs and "```" in reply:
            # the whole program, rewritten (helpers it added stay)
            code = block if block.endswith("\n") else block + "\n"
            return Edit(code, "program", len(funcs))
        code = parent
        # replace from the last function backwards so that offsets stay valid
        for name in sorted(known, key=lambda f: parent_funcs[f][0], reverse=True):
            s, e = parent_funcs[name]
            bs, be = funcs[name]
            text = block[bs:be]
            if not text.endswith("\n"):
                text += "\n"
            code = code[:s] + text + code[e:]
        # helpers the block adds go before the first replaced function
        new = [f for f in funcs if f not in parent_funcs]
        if new:
            first = min(parent_funcs[f][0] for f in known)
            extra = "".join(
                block[funcs[f][0] : funcs[f][1]].rstrip("\n") + "\n\n"
                for f in sorted(new, key=lambda f: funcs[f][0])
            )
            code = code[:first] + extra + code[first:]
        return Edit(code, "function", len(funcs))
    return None


def apply_reply(reply: str, parent: str, language: str, entry: str) -> Edit:
    """The program a reply describes, applied to `parent`.

    Tried in order: SEARCH/REPLACE blocks, a unified diff (hunks placed by their context:
    exact, whitespace-insensitive, then fuzzy), whole functions in a code block (a function
    of the parent's name replaces it; a block with every function of the parent replaces the
    program). CRLF line ends are accepted. Raises :class:`EditError` ("unparsable reply:
    ...") when nothing applies or the result equals the parent.
    """
    if not isinstance(reply, str) or not reply.strip():
        raise EditError("unparsable reply: empty")
    reply = _normalise(reply)
    parent_n = _normalise(parent)
    edit = _search_replace(reply, parent_n)
    if edit is None:
        edit = _diff(reply, parent_n)
    if edit is None:
        edit = _whole(reply, parent_n, language, entry)
    if edit is None:
        raise EditError(
            "unparsable reply: no SEARCH/REPLACE block, diff hunk or function of the program"
        )
    if edit.code.strip() == parent_n.strip():
        raise EditError("unparsable reply: the edit leaves the program unchanged")
    return edit
