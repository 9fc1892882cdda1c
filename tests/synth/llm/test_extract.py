"""Code extraction from the shapes real model answers take."""

from __future__ import annotations

import ast

import pytest

from synth import extract_code

MODEL = "import jax.numpy as jnp\n\n\ndef step(state, action):\n    return state + action\n"
USAGE = "state = jnp.zeros(4)\nprint(step(state, 1))\n"


def fenced(code: str, tag: str = "python", fence: str = "```") -> str:
    return f"{fence}{tag}\n{code}{fence}\n"


@pytest.mark.parametrize("tag", ["python", "py", "Python3", ""])
def test_one_fenced_block_in_prose(tag: str) -> None:
    text = f"Sure! Here is the model.\n\n{fenced(MODEL, tag)}\nIt adds the action to the state."
    result = extract_code(text)
    assert (result.code, result.method, result.truncated) == (MODEL, "fence", False)


def test_tilde_fence() -> None:
    assert extract_code(fenced(MODEL, fence="~~~")).code == MODEL


@pytest.mark.parametrize("usage_first", [False, True])
def test_the_block_defining_step_wins_over_a_usage_example(usage_first: bool) -> None:
    blocks = [fenced(USAGE), fenced(MODEL)] if usage_first else [fenced(MODEL), fenced(USAGE)]
    text = "The model:\n" + "\nAnd how to call it:\n".join(blocks)
    assert extract_code(text).code == MODEL


def test_a_sketch_of_one_part_does_not_replace_the_whole_program() -> None:
    sketch = "def step(state, action):\n    ...\n"
    text = f"A sketch:\n{fenced(MODEL)}\nThe core only:\n{fenced(sketch)}"
    assert extract_code(text).code == MODEL


def test_of_equally_long_blocks_defining_step_the_last_wins() -> None:
    first = "def step(state, action):\n    return state - action\n"
    second = "def step(state, action):\n    return state + action\n"
    assert extract_code(fenced(first) + "Wait, the sign is wrong:\n" + fenced(second)).code == second


def test_python_blocks_win_over_other_languages() -> None:
    text = fenced("pip install jax\n", "bash") + fenced(MODEL)
    assert extract_code(text).code == MODEL


def test_a_block_in_another_language_is_used_when_it_is_the_only_one() -> None:
    assert extract_code(fenced(MODEL, "text")).code == MODEL


def test_an_indented_fence_is_dedented() -> None:
    indented = "".join("    " + line if line.strip() else line for line in fenced(MODEL).splitlines(True))
    result = extract_code("1. Write the model:\n" + indented)
    assert result.code == MODEL
    ast.parse(result.code)


def test_a_longer_fence_may_contain_backticks() -> None:
    code = 'def step(state, action):\n    """Use it as ```step(s, a)```."""\n    return state\n'
    assert extract_code(fenced(code, fence="````")).code == code


def test_an_unclosed_fence_is_returned_and_flagged_truncated() -> None:
    text = "Here it is:\n```python\nimport jax.numpy as jnp\n\ndef step(state, action):\n    x = jnp.clip(state["
    result = extract_code(text)
    assert result.truncated and result.method == "unclosed_fence"
    assert result.code.startswith("import jax.numpy") and result.code.rstrip().endswith("jnp.clip(state[")


def test_a_complete_block_beats_a_later_truncated_one() -> None:
    text = fenced(MODEL) + "A faster version:\n```python\ndef step(state, action):\n    return jnp.where("
    result = extract_code(text)
    assert (result.code, result.truncated) == (MODEL, False)


def test_no_fence_pure_code() -> None:
    result = extract_code(MODEL)
    assert (result.code, result.method) == (MODEL, "unfenced")


def test_no_fence_with_prose_around_the_code() -> None:
    text = f"Here is the code you asked for:\n\n{MODEL}\nThat's it. Let me know if it works."
    result = extract_code(text)
    assert (result.code, result.method) == (MODEL, "unfenced")


def test_no_fence_broken_code_defining_step_is_still_returned() -> None:
    text = "def step(state, action):\n    return state +\n"
    assert extract_code(text).code == text


@pytest.mark.parametrize("text", ["", "Sure.", "I cannot help with that.", "The state is x = 3 meters.\n"])
def test_prose_alone_gives_no_code(text: str) -> None:
    result = extract_code(text)
    assert (result.code, result.method, result.truncated) == ("", "none", False)


def test_code_after_the_last_correct_code_heading() -> None:
    old = MODEL.replace("+", "-") + "# the old, longer, wrong program\n" * 3
    text = (
        f"## Error explanation\nThe sign is wrong in:\n{fenced(old)}\n"
        f"## Correct code\n{fenced(MODEL)}\nThis fixes the sign."
    )
    result = extract_code(text)
    assert result.code == MODEL and result.after_correct_code_heading


@pytest.mark.parametrize("second", ["### Correct Code (final)", "**Correct code:**"])
def test_the_last_correct_code_heading_counts(second: str) -> None:
    draft = "def step(state, action):\n    return state * 2 + action - 1  # draft\n"
    text = f"## Correct code\n{fenced(draft)}\nHmm, no.\n{second}\n{fenced(MODEL)}"
    assert extract_code(text).code == MODEL


def test_a_correct_code_comment_inside_a_block_is_not_a_heading() -> None:
    code = "def step(state, action):\n    # Correct code for the pole angle\n    return state\n"
    result = extract_code("Here:\n" + fenced(code))
    assert result.code == code and not result.after_correct_code_heading


def test_unfenced_code_after_the_correct_code_heading() -> None:
    text = f"## Error explanation\nOff by one.\n\n## Correct code\n{MODEL}"
    result = extract_code(text)
    assert (result.code, result.method, result.after_correct_code_heading) == (MODEL, "unfenced", True)


def test_a_correct_code_heading_with_nothing_after_it_gives_no_code() -> None:
    text = f"## Error explanation\nThe old code:\n{fenced(MODEL)}\n## Correct code\n"
    result = extract_code(text)
    assert (result.code, result.method, result.after_correct_code_heading) == ("", "none", True)


def test_trailing_main_guard_is_dropped():
    from synth.llm.extract import extract_code

    text = ("```python\nimport jax.numpy as jnp\n\ndef step(state, action):\n    return state, 1.0, False\n\n"
            "if __name__ == '__main__':\n    print(step(jnp.zeros(4), 0))\n```\n")
    found = extract_code(text)
    assert "__main__" not in found.code and found.code.rstrip().endswith("return state, 1.0, False")


def test_reasoning_block_drafts_are_ignored():
    from synth.llm.extract import extract_code

    draft = "```python\nimport jax.numpy as jnp\n\ndef step(state, action):\n    # a long first draft\n" + \
        "    x = state * 2.0\n    y = x + 1.0\n    return y, 0.0, False\n```"
    final = "```python\ndef step(state, action):\n    return state, 1.0, False\n```"
    found = extract_code(f"<think>Let me draft.\n{draft}\nHmm, simpler.</think>\nHere it is:\n{final}\n")
    assert found.code.strip() == "def step(state, action):\n    return state, 1.0, False"


OLD = "import jax.numpy as jnp\n\nGRAVITY = 9.81  # the old, wrong value\n\n\ndef step(state, action):\n    return state + action * GRAVITY\n"
NEW = "import jax.numpy as jnp\n\n\ndef step(state, action):\n    return state + action * 9.8\n"


@pytest.mark.parametrize("heading", ["### Corrected code", "## Fixed code", "**Updated code**", "## Final Python code",
                                     "# Improved code:", "## 4. Revised code"])
def test_usual_code_headings_cut_off_the_quoted_old_program(heading: str) -> None:
    text = (f"## Error explanation\nGravity is wrong.\n\n## Error location and wrong logic\n{fenced(OLD)}\n"
            f"{heading}\n{fenced(NEW)}")
    result = extract_code(text)
    assert result.code == NEW and result.after_correct_code_heading
    assert result.explanation.startswith("## Error explanation\nGravity is wrong.") and "GRAVITY = 9.81" in result.explanation


def test_without_a_heading_the_last_whole_program_wins_over_a_longer_quoted_one() -> None:
    text = f"Your program:\n{fenced(OLD)}\nThe fix:\n{fenced(NEW)}"
    assert len(OLD) > len(NEW) and extract_code(text).code == NEW


def test_a_block_equal_to_the_prompts_program_is_skipped_or_flagged() -> None:
    quoted_last = f"The fix:\n{fenced(NEW)}\nFor reference, your program was:\n{fenced(OLD)}"
    result = extract_code(quoted_last, avoid=OLD.replace("  # the old, wrong value", ""))
    assert result.code == NEW and not result.repeats_avoided
    only_old = f"## Correct code\n{fenced(OLD)}"
    result = extract_code(only_old, avoid=OLD)
    assert result.code == OLD and result.repeats_avoided


def test_the_explanation_is_the_prose_outside_code() -> None:
    result = extract_code(f"I use Euler steps.\n{fenced(MODEL)}\nDone.")
    assert result.explanation == "I use Euler steps.\n\nDone."
