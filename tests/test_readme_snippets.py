"""Every ```python block of README.md runs as written (issue 11: the snippets must not rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_the_readme_has_python_snippets():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_snippet_runs(index, capsys):
    namespace: dict = {"__name__": f"readme_snippet_{index}"}
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), namespace)  # our own docs, trusted
    if "actions" in namespace:  # the planning snippet: one action per state of the batch
        assert namespace["actions"].shape == namespace["keys"].shape[:1]
