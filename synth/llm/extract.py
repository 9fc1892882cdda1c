"""Find the program in a model's answer.

Real answers wrap the code in prose, give several blocks (the model and a
usage example), use ```python, ```py or bare fences, forget the fence, or
stop mid-block at max_tokens. The rules, in order:

1. If the answer has a code heading outside code blocks (`## Correct code`,
   as the GIF-MCTS fix/improve prompts ask, or Corrected / Fixed / Updated /
   Final / Improved / Revised / Complete / Full code; any level, or in
   bold), only the text after the last one is searched: code before it is
   usually the old, wrong program quoted back. The text before it is the
   model's explanation.
2. Among fenced blocks tagged as Python or untagged (any block if there are
   none such), take those that define `def step`: complete blocks before an
   unclosed one, then the LAST of those at least half as long as the
   longest (a model's final version comes last, after the program quoted
   back for reference; a much shorter block is a sketch of one part). If
   none defines `step`,
   the longest complete block, then an unclosed one. A block equal (after
   normalisation) to `avoid`, the program the prompt showed, is skipped; if
   nothing else is left it is returned with `repeats_avoided=True`.
3. Without fences: the whole text if it parses as Python with at least one
   definition, import or assignment; otherwise, if it contains such code or
   `def step`, the text from its first code-looking line, less trailing
   lines of prose.

0. Reasoning in `<think>...</think>` (DeepSeek-R1, Qwen3 and other
   reasoning models) is dropped first: drafts in it are not the answer.
4. A trailing `if __name__ == "__main__":` block is dropped: it is a usage
   example, not part of the model (and the validator rejects top-level code).

An unclosed fence means the answer was cut off: its code is returned with
`truncated=True` so the caller can say so rather than report a syntax error.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from typing import Literal

from cwm_jax.validate.text import source_lines
from synth.search.node import normalized_program

__all__ = ["Extraction", "Method", "extract_code"]

Method = Literal["fence", "unclosed_fence", "unfenced", "none"]

_PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})
# Possessive quantifiers (*+): no backtracking, so each line is matched in linear time
# (the tag and the rest of the line overlap, which made a long line quadratic).
_FENCE_OPEN = re.compile(r"^[ \t]*+(?P<fence>`{3,}+|~{3,}+)[ \t]*+(?P<tag>[\w+.-]*+)[^\n`]*+$")
_CORRECT_CODE = re.compile(
    r"^[ \t]*(#{1,6}|\*\*)[ \t]*(\d+[.)][ \t]*)?(correct|corrected|fixed|updated|final|improved|revised|complete|full)"
    r"[ \t]+(python[ \t]+)?code\b", re.IGNORECASE)
_EXPLANATION_CHARS = 4000
_DEFINES_STEP = re.compile(r"^[ \t]*def[ \t]+step[ \t]*\(", re.MULTILINE)
_CODE_START = re.compile(
    r"^(import |from \w|def |class |@|[A-Za-z_][\w.]*+(\[[^\]]*+\])?[ \t]*+(:[ \t]*+[\w.]++(\[[\w., ]*+\])?[ \t]*+)?=[^=])"
)


@dataclass(frozen=True)
class Extraction:
    """The code found (may be empty), whether it was cut off, and how it was found.

    `explanation` is the model's prose (before the code heading, or outside
    the code blocks), `repeats_avoided` says the code equals the `avoid`
    program because the answer held no other.
    """

    code: str
    truncated: bool
    method: Method
    after_correct_code_heading: bool
    explanation: str = ""
    repeats_avoided: bool = False


@dataclass(frozen=True)
class _Block:
    code: str
    tag: str
    closed: bool


def extract_code(text: str, *, avoid: str = "") -> Extraction:
    """The program in `text`, by the rules in the module docstring; `avoid` is the prompt's program."""
    text = _without_think(text)
    split = _split_at_last_correct_code_heading(text)
    sectioned = split is not None
    if split is not None:
        explanation, text = split
    else:
        explanation = _outside_fences(text)
    explanation = explanation.strip()[:_EXPLANATION_CHARS]

    blocks = _fenced_blocks(text)
    unwanted = normalized_program(avoid) if avoid.strip() else None
    fresh = [b for b in blocks if unwanted is None or normalized_program(b.code) != unwanted]
    block = _choose(fresh)
    repeats = False
    if block is None and len(fresh) < len(blocks):
        block, repeats = _choose(blocks), True
    if block is not None:
        method: Method = "fence" if block.closed else "unclosed_fence"
        return Extraction(_without_main_guard(block.code), truncated=not block.closed, method=method,
                          after_correct_code_heading=sectioned, explanation=explanation, repeats_avoided=repeats)

    code = _unfenced(text)
    if code:
        return Extraction(_without_main_guard(code), truncated=False, method="unfenced",
                          after_correct_code_heading=sectioned, explanation=explanation,
                          repeats_avoided=unwanted is not None and normalized_program(code) == unwanted)
    return Extraction("", truncated=False, method="none", after_correct_code_heading=sectioned,
                      explanation=explanation)


def _outside_fences(text: str) -> str:
    """The prose of an answer: its lines outside fenced blocks."""
    kept, closing = [], None
    for line in source_lines(text):
        if closing is not None:
            if closing.match(line):
                closing = None
        elif (opening := _FENCE_OPEN.match(line)) is not None:
            closing = _closing_fence(opening["fence"])
        else:
            kept.append(line)
    return "\n".join(kept)


_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)


def _without_think(text: str) -> str:
    """`text` without `<think>...</think>` spans, in one pass (a lazy `.*?` rescans per unclosed tag)."""
    kept, pos = [], 0
    while (start := _THINK_OPEN.search(text, pos)) is not None:
        end = _THINK_CLOSE.search(text, start.end())
        if end is None:
            break
        kept.append(text[pos:start.start()])
        pos = end.end()
    kept.append(text[pos:])
    return "".join(kept)
_MAIN_GUARD = re.compile(r"""^if[ \t]+__name__[ \t]*==[ \t]*["']__main__["'][ \t]*:""", re.MULTILINE)


def _without_main_guard(code: str) -> str:
    """`code` up to a top-level `if __name__ == "__main__":` block, which is dropped."""
    match = _MAIN_GUARD.search(code)
    return code if match is None else code[: match.start()].rstrip() + "\n"


def _split_at_last_correct_code_heading(text: str) -> tuple[str, str] | None:
    """(text before, text after) the last code heading outside fences (a `# correct code` comment is not one)."""
    lines = source_lines(text)
    last = None
    closing: re.Pattern[str] | None = None
    for k, line in enumerate(lines):
        if closing is not None:
            if closing.match(line):
                closing = None
        elif (opening := _FENCE_OPEN.match(line)) is not None:
            closing = _closing_fence(opening["fence"])
        elif _CORRECT_CODE.match(line):
            last = k
    return None if last is None else ("\n".join(lines[:last]), "\n".join(lines[last + 1:]))


def _closing_fence(fence: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*+{re.escape(fence[0])}{{{len(fence)},}}+[ \t]*+$")


def _fenced_blocks(text: str) -> list[_Block]:
    """Every fenced block; a fence still open at the end yields an unclosed block."""
    blocks: list[_Block] = []
    lines = source_lines(text)
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, tag = opening["fence"], opening["tag"].lower()
        close = _closing_fence(fence)
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = "\n".join(_dedented(lines[i + 1:j])).strip("\n")
        blocks.append(_Block(body + "\n" if body else "", tag, closed=j < len(lines)))
        i = j + 1
    return blocks


def _dedented(lines: list[str]) -> list[str]:
    """`textwrap.dedent` on lines, in linear time (it compiles its margin into a regex)."""
    margins = [line[: len(line) - len(line.lstrip(" \t"))] for line in lines if line.strip(" \t")]
    margin = len(os.path.commonprefix(margins)) if margins else 0
    return [line[margin:] if line.strip(" \t") else "" for line in lines]


def _choose(blocks: list[_Block]) -> _Block | None:
    python = [b for b in blocks if b.tag in _PYTHON_TAGS and b.code]
    pool = python or [b for b in blocks if b.code]
    if not pool:
        return None
    with_step = [b for b in pool if _DEFINES_STEP.search(b.code)]
    candidates = with_step or pool
    complete = [b for b in candidates if b.closed]
    ranked = complete or candidates
    if with_step:
        # The last whole program: a block under half the longest's length is a sketch of a part.
        longest = max(len(b.code) for b in ranked)
        return [b for b in ranked if 2 * len(b.code) >= longest][-1]
    # max() keeps the first maximum; search reversed so ties go to the last block
    return max(reversed(ranked), key=lambda b: len(b.code))


def _unfenced(text: str) -> str:
    whole = text.strip("\n")
    if _is_program(whole):
        return whole.rstrip() + "\n"
    lines = source_lines(whole)
    start = next((k for k, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return ""
    lines = lines[start:]
    while lines and (not lines[-1].strip() or _is_prose(lines[-1])):
        lines.pop()
    code = "\n".join(lines).rstrip()
    # Code that still does not parse is returned if it defines step: the
    # validator's syntax error is more useful feedback than "no code found".
    return code + "\n" if code and (_is_program(code) or _DEFINES_STEP.search(code)) else ""


def _is_prose(line: str) -> bool:
    """An unindented line of words that is not a statement ("That's it.", "Note:")."""
    if not line[:1].isalpha() or _CODE_START.match(line):
        return False
    return not _is_program(line)


def _is_program(code: str) -> bool:
    """Parses, and does something a program does (a bare word of prose also parses)."""
    try:
        tree = ast.parse(code)
    except Exception:  # noqa: BLE001 - SyntaxError, and RecursionError/MemoryError on deep or huge text
        return False
    return any(not isinstance(node, ast.Expr) for node in tree.body)
