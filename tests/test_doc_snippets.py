"""Every snippet in README.md and docs/*.md works as written (issue 11: the docs must not rot).

- ```python blocks: all blocks of one file run in order in one namespace, in
  this process (imports and compiled functions are shared), from a temporary
  working directory, with a loopback LLM server as `OPENAI_BASE_URL`.
- Every other fenced block: each command line that starts with `cwm-jax`,
  `python -m cwm_jax` or `python experiments/X.py` is parsed (not run) by the
  real argument parser, so a stale option or value fails here. `[--opt X]`
  (optional, in a synopsis) must name an option the parser knows.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest

from cwm_jax.commands import main as cli
from cwm_jax.errors import UsageError
from synth.testing.llm_server import LLMTestServer

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(`{3,})([\w-]*)[^\n]*\n(.*?)^\1[ \t]*$", flags=re.S | re.M)
COMMAND = re.compile(r"^(?:\$ )?(cwm-jax|python -m cwm_jax|python experiments/\w+\.py)(?=\s|$)")


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    """(language tag, text) of every fenced block of a markdown file."""
    return [(m.group(2), m.group(3)) for m in FENCE.finditer(path.read_text(encoding="utf-8"))]


def command_lines(path: Path) -> list[str]:
    """The command lines of the non-python blocks (backslash continuations joined)."""
    lines = []
    for language, text in fenced_blocks(path):
        if language in ("python", "py"):
            continue
        for line in text.replace("\\\n", " ").splitlines():
            line = line.strip()
            if COMMAND.match(line):
                lines.append(line.removeprefix("$ "))
    return lines


PYTHON_FILES = [p for p in DOC_FILES if any(lang == "python" for lang, _ in fenced_blocks(p))]
COMMANDS = [(p.relative_to(ROOT).as_posix(), line) for p in DOC_FILES for line in command_lines(p)]


def test_the_docs_have_snippets_and_commands():
    assert {p.name for p in PYTHON_FILES} >= {"README.md", "planning.md", "rl.md", "sandbox.md"}
    assert len(COMMANDS) >= 20


@pytest.fixture(scope="module")
def llm_server():
    with LLMTestServer(models=("Qwen/Qwen2.5-Coder-7B-Instruct",)) as server:
        yield server


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_snippets_run(path, tmp_path, monkeypatch, llm_server):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.base_url)
    namespace: dict = {"__name__": f"doc_snippets_{path.stem}"}
    blocks = [text for language, text in fenced_blocks(path) if language == "python"]
    for index, text in enumerate(blocks):
        # Our own docs, trusted: executed in-process like a doctest.
        exec(compile(text, f"{path.name} python block {index + 1}", "exec"), namespace)


# -- command lines -------------------------------------------------------------


class ParseError(Exception):
    """The command line was rejected by its parser."""


def split_synopsis(tokens: list[str]) -> tuple[list[str], list[list[str]]]:
    """(required tokens, optional groups): `[--split test]` -> group ["--split", "test"]."""
    required, groups, group = [], [], None
    for token in tokens:
        if group is None and token.startswith("["):
            group, token = [], token[1:]
        if group is None:
            required.append(token)
            continue
        closed = token.endswith("]")
        group.append(token.removesuffix("]"))
        if closed:
            groups.append(group)
            group = None
    assert group is None, f"unclosed [ in {tokens}"
    return required, groups


def experiment_parser(script: str):
    """`argv -> Namespace` of experiments/<script>: a `cwm-jax` wrapper, or its own `build_parser()`."""
    path = ROOT / "experiments" / script
    source = path.read_text(encoding="utf-8")
    wrapped = re.search(r'\bscript\("(\w+)", "python experiments/' + re.escape(script) + '"\\)', source)
    if wrapped:
        return lambda argv: cli.parse_args([wrapped.group(1), *argv])
    experiments = str(path.parent)
    if experiments not in sys.path:
        sys.path.append(experiments)  # appended: experiments/synth.py must not shadow the `synth` package
    spec = importlib.util.spec_from_file_location(f"_docs_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert hasattr(module, "build_parser"), f"experiments/{script} has no build_parser() to check its options with"
    return lambda argv: module.build_parser().parse_args(argv)


def parse(line: str, capsys) -> None:
    tokens = shlex.split(line, comments=True)
    if tokens[0] == "cwm-jax":
        parser, argv = cli.parse_args, tokens[1:]
    elif tokens[:3] == ["python", "-m", "cwm_jax"]:
        parser, argv = cli.parse_args, tokens[3:]
    else:
        parser, argv = experiment_parser(Path(tokens[1]).name), tokens[2:]
    required, optional = split_synopsis(argv)

    def attempt(argv: list[str]) -> None:
        try:
            parser(argv)
        except UsageError as exc:
            raise ParseError(str(exc)) from None
        except SystemExit as exc:  # plain argparse: the message went to stderr
            raise ParseError(capsys.readouterr().err.strip().splitlines()[-1]) from exc

    attempt(required)
    for group in optional:  # the value may be a placeholder (N, PATH); the option must exist
        try:
            attempt(required + group)
        except ParseError as exc:
            if "unrecognized arguments" in str(exc) or "ambiguous option" in str(exc):
                raise


@pytest.mark.parametrize(("doc", "line"), COMMANDS, ids=[f"{d}:{i}" for i, (d, _) in enumerate(COMMANDS)])
def test_command_lines_parse(doc, line, capsys):
    try:
        parse(line, capsys)
    except ParseError as exc:
        pytest.fail(f"{doc}: `{line}` is rejected by its parser: {exc}")


@pytest.mark.parametrize("line", [
    "cwm-jax plan --env gymnax/CartPole --no-such-option",
    "python -m cwm_jax check MODEL.py --env gymnax/CartPole [--no-such-option]",
    "python experiments/plan.py --env gymnax/CartPole --seeds many",
    "python experiments/speed.py check --no-such-option",
    "python experiments/env_determinism.py --no-such-option",
])
def test_a_stale_command_line_is_caught(line, capsys):
    with pytest.raises(ParseError):
        parse(line, capsys)
