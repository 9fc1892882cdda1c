"""Untrusted text (an LLM's answer, a model file) as the parser counts it and as a terminal may show it.

- `source_lines` splits on `\\r\\n`, `\\r` and `\\n` only, as Python's parser
  counts lines (`str.splitlines` also breaks at form feed, `\\x0b`,
  `\\x1c`-`\\x1e`, `\\x85`, U+2028/2029, so its line N is not the parser's).
- `strip_bom` removes one leading byte-order mark; validation, quoting and
  fit write-back all go through it, so they agree on line 1.
- `printable` escapes control characters, so text shown on a terminal cannot
  move the cursor, clear the screen or forge other output.
"""

from __future__ import annotations

import re

__all__ = ["BOM", "printable", "source_lines", "strip_bom"]

BOM = "\ufeff"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_AFTER_LINE_BREAK = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi overrides.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def strip_bom(text: str) -> str:
    """`text` without one leading byte-order mark."""
    return text[1:] if text.startswith(BOM) else text


def source_lines(text: str, *, keepends: bool = False) -> list[str]:
    """The lines of `text` as the Python parser numbers them (line N is item N - 1).

    With `keepends`, each line keeps its line break and `"".join` gives `text` back.
    """
    lines = (_AFTER_LINE_BREAK if keepends else _LINE_BREAK).split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = True) -> str:
    """`text` with every control character written as an escape (`\\x1b`), tabs kept.

    Newlines stay unless `keep_newlines` is False; a carriage return is
    always escaped (it would let a line overwrite itself).
    """
    text = _CONTROL.sub(_escape, str(text))
    return text if keep_newlines else text.replace("\n", "\\n")
