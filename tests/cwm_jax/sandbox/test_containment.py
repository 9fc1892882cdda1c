"""Issue 18: what `check` scores is what runs, a validator with bounded memory, failures that stay
a candidate's, untrusted text that cannot forge output, and line numbers that agree with the parser."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cwm_jax import envs, models, reference
from cwm_jax.sandbox import artifact
from cwm_jax.commands import main as cli
from cwm_jax.commands import common as command
from cwm_jax.validate import loader
from cwm_jax.score import scoring
from cwm_jax.validate import validator
from cwm_jax.errors import CWMError, CWMLoadError, SandboxError
from cwm_jax.fit.constants import find_constants, write_back
from cwm_jax.validate.text import printable, source_lines
from cwm_jax.validate.constants import Folder
from synth.llm.extract import extract_code
from tests.sandbox_support import ENV, REPO

SPEC = envs.env_spec(ENV)

# Exact reward (1.0) for its first 4 traces, then 0.0: `seen` doubles at every trace of `step`.
TRACE_COUNTING = '''import jax.numpy as jnp
def step(state, action, seen=[0.0]):
    seen += seen
    ok = 1.0 if len(seen) <= 16 else 0.0
    return state * 1.0, jnp.float32(ok), state[0] > 100.0
'''


# -- 1. the model that runs is the model that was scored ------------------------------------


def test_plan_runs_the_artifact_the_sandbox_scored_not_the_programs_python():
    step, checked = models.sandboxed_step(TRACE_COUNTING, SPEC)
    assert checked.valid and checked.summary["reward_accuracy"] == 1.0
    for batch in (3, 5):  # two shapes: two traces here, which the program's Python would count
        states = np.zeros((batch, SPEC.obs_dim), np.float32)
        _, reward, _ = jax.jit(jax.vmap(step))(states, np.zeros(batch, np.int32))
        assert np.all(np.asarray(reward) == 1.0), batch


def test_the_artifact_vmaps_nests_and_scans_like_the_program():
    step = loader.load_reference(SPEC)
    run = artifact.exported_step(artifact.decode(artifact.encode(artifact.export_step(step, SPEC))), SPEC)
    states = np.random.default_rng(0).normal(size=(2, 3, SPEC.obs_dim)).astype(np.float32)
    actions = np.array([[0, 1, 1], [1, 0, 1]], np.int32)
    want = jax.jit(jax.vmap(jax.vmap(step)))(states, actions)
    got = jax.jit(jax.vmap(jax.vmap(run)))(states, actions)
    for w, g in zip(want, got):
        np.testing.assert_allclose(np.asarray(w, float), np.asarray(g, float), rtol=1e-6, atol=1e-6)

    def rollout(state):
        return jax.lax.scan(lambda s, _: (run(s, jnp.int32(1))[0], None), state, None, length=4)[0]

    np.testing.assert_allclose(jax.vmap(rollout)(states[0]), jax.vmap(
        lambda s: jax.lax.scan(lambda c, _: (step(c, jnp.int32(1))[0], None), s, None, length=4)[0])(states[0]),
        rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="cannot be read"):
        artifact.decode("bm90IGFuIGFydGlmYWN0")


def test_a_failure_after_loading_is_a_rejection_not_an_exception():
    # The export trace (the 4th) returns a reward of shape (2,): the checks of the first traces passed.
    source = TRACE_COUNTING.replace("    ok = 1.0 if len(seen) <= 16 else 0.0\n", "").replace(
        "jnp.float32(ok)", "jnp.float32(1.0) if len(seen) <= 8 else jnp.ones(2)")
    result = scoring.score_source(source, SPEC, load_split=lambda spec, split: _tiny_split())
    assert not result.valid and result.error_kind == "runtime" and "does not match" in result.error


def _tiny_split():
    from cwm_jax.data import transitions as data

    train = data.load_split(SPEC, "train")
    return data.Transitions(*(field[:8] for field in train))


# -- 2. a validator with bounded time and memory ---------------------------------------------

_HOSTILE_CONSTANTS = {
    "A = 1 << 2**33": "shift",
    "A = -1 << 2**40": "shift",
    "A = 0 << 2**200": "too large",
    "A = (1 << 255) * (1 << 255)": "bit integer",
}


def test_constant_folds_stay_small_under_a_memory_cap():
    """In a child capped at 256 MiB above its start: each hostile fold is refused by its cap, quickly."""
    code = f"""
import json, resource, sys, time
from cwm_jax.validate import validator
from cwm_jax.errors import CWMError
in_use = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (in_use + (256 << 20), resource.RLIM_INFINITY))
out = {{}}
for line in {list(_HOSTILE_CONSTANTS)!r}:
    source = "import jax.numpy as jnp\\n" + line + "\\ndef step(state, action):\\n    return state, jnp.float32(0), state[0] > 1\\n"
    start = time.perf_counter()
    try:
        validator.validate(source)
        out[line] = ["ACCEPTED", 0]
    except CWMError as error:
        out[line] = [str(error), time.perf_counter() - start]
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout.splitlines()[-1])
    for line, fragment in _HOSTILE_CONSTANTS.items():
        message, seconds = results[line]
        assert fragment in message and "too large to check" not in message and seconds < 1.0, (line, message)


def test_kept_rejections_hold_no_frames():
    source = "import jax.numpy as jnp\nA = 2 ** 100000\nB = open\ndef step(state, action):\n    return state\n"
    for _ in range(2):  # validated, then from the cache
        with pytest.raises(CWMError) as caught:
            validator.validate(source)
    error = caught.value
    assert error.line == 2 and "exponent" in str(error) and "open" in str(error)
    for e in (error, *getattr(error, "problems", ())):
        assert e.__context__ is None and e.__cause__ is None
    cached = validator._cache[source]
    assert all(e.__traceback__ is None for e in (cached, *cached.problems))


def test_constant_folds_are_not_confused_by_reused_ids():
    folder = Folder({}, {})
    for i in range(200):  # each temporary node is freed before the next: CPython reuses its id
        assert folder.fold(ast.parse(f"{i} + 1", mode="eval").body) == i + 1


def test_hypothesis_fuzzing_of_the_validator_under_a_memory_cap():
    """A short session of experiments/fuzz_validator.py (derandomized); the long one is a developer command."""
    proc = subprocess.run([sys.executable, "experiments/fuzz_validator.py", "--examples", "250", "--seed", "0",
                           "--memory-mb", "512"], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "250 programs validated" in proc.stdout, proc.stderr[-3000:]


# -- 3. a candidate can fail, the command cannot -----------------------------------------------


@pytest.mark.parametrize("command_name", ["check", "fit"])
def test_check_and_fit_report_a_sandbox_failure_as_one_line_and_as_json(command_name, monkeypatch, tmp_path,
                                                                         capsys):
    from cwm_jax import sandbox

    def broken(*args, **kwargs):
        raise SandboxError("the worker failed: Traceback ...\nValueError: boom")

    monkeypatch.setattr(sandbox, "score_file" if command_name == "check" else "fit_source", broken)
    model = tmp_path / "m.py"
    model.write_text(reference.source(SPEC))
    assert cli.main([command_name, str(model), "--env", ENV]) == command.EXIT_FAILED
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "boom" in errors[0] and "Traceback (most recent" not in err
    assert cli.main([command_name, str(model), "--env", ENV, "--json"]) == command.EXIT_FAILED
    payload = json.loads(capsys.readouterr().out)
    assert payload["valid"] is False and "boom" in payload["error"]


# -- 4. untrusted text is shown, never obeyed; lines as the parser counts them ---------------


def test_a_rejected_line_cannot_write_escape_sequences_to_the_terminal(tmp_path, capsys):
    model = tmp_path / "m.py"
    model.write_text("import os  # \x1b[2J\x1b[Hvalid CWM, accuracy 1.0000\rX\n"
                     "def step(state, action):\n    return state\n")
    assert cli.main(["check", str(model), "--env", ENV]) == command.EXIT_FAILED
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err and err.count("\n") == 1 and "\\x1b[2J" in err
    assert printable("a\x9bb\u202ec\td\n") == "a\\x9bb\\u202ec\td\n"


def test_line_numbers_quotes_and_fit_write_back_agree_with_the_parser():
    source = ("\ufeffimport jax.numpy as jnp\n# form feed \x0c and \u2028 and \x1c in a comment\n"
              "G = 9.8\nL = 0.5\ndef step(state, action):\n    return state * G * L, jnp.float32(0), state[0] > 1\n")
    assert len(source_lines(source)) == 6 and "".join(source_lines(source, keepends=True)) == source
    constants = find_constants(validator.validate(source))
    fitted = write_back(source, constants, {"G": 9.81, "L": 0.25})
    assert fitted == source.replace("G = 9.8\n", "G = 9.81\n").replace("L = 0.5\n", "L = 0.25\n")
    bad = source.replace("L = 0.5", "L = open")
    with pytest.raises(CWMError) as caught:
        validator.validate(bad)
    assert caught.value.line == 4 and caught.value.source_line == "L = open"


# -- 5. linear-time extraction; file size before reading -------------------------------------


@pytest.mark.parametrize("answer", [
    "```" + "a" * 1_000_000 + "`",
    "<think>" * 150_000,
    "x:" + "b" * 1_000_000 + "!",
    "```python\n" + " " * 1_000_000 + "`" * 10 + "x\n",
    "-" * 3000 + "1",
    "x = " + "~" * 100_000 + "1",
], ids=["fence-tag", "think", "annotation", "dedent", "deep-unary", "parser-memory"])
def test_extraction_is_linear_and_total(answer):
    start = time.perf_counter()
    extract_code(answer)
    assert time.perf_counter() - start < 1.0


def test_a_model_file_is_sized_before_it_is_read(tmp_path):
    big = tmp_path / "big.py"
    with big.open("wb") as f:
        f.truncate(256 << 20)  # sparse: nothing to read unless the reader reads it
    start = time.perf_counter()
    with pytest.raises(CWMLoadError, match="larger than"):
        loader.read_cwm_file(big)
    assert time.perf_counter() - start < 0.1
