"""The search harness with a fake scorer and a fake fitter: the fit step, the search value,
calls in flight, sampling parameters, and what each node records. No sandbox, no JAX call."""

from __future__ import annotations

import asyncio
import json
import types

import pytest

from cwm_jax import envs
from cwm_jax.score.scoring import ScoreResult
from synth.search.baselines import WorldCoder, ZeroShot
from synth.search.gif_mcts import GifMcts
from synth.search.harness import Harness
from synth.search.protocol import Sampling
from synth.llm.client import Completion, LLMClient, LLMConfig
from synth.testing.llm_server import LLMTestServer

SPEC = envs.env_spec("gymnax/CartPole")
BODY = "".join(f"LINE_{k} = {k}\n" for k in range(6)) + "def step(state, action):\n    return state, 1.0, False\n"
WRONG = "GRAVITY = 9.81\n" + BODY
PARTIAL = "GRAVITY = 9.805\n" + BODY
CORRECT = "GRAVITY = 9.8\n" + BODY
BUGGY = "GRAVITY = 9.8\nif x:\n" + BODY
# program -> (paper value, strict value)
VALUES = {WRONG: (0.8, 0.5), PARTIAL: (0.95, 0.9), CORRECT: (1.0, 1.0)}


def fake_score(source: str) -> ScoreResult:
    if source not in VALUES:
        return ScoreResult(valid=False, error="line 2: `if` on a traced value", error_kind="load")
    paper, strict = VALUES[source]
    summary = {"accuracy": strict, "strict_accuracy": strict, "weighted_accuracy": paper, "n_transitions": 10}
    example = "" if strict == 1.0 else f"Transition #3 is predicted wrongly (source {len(source)})."
    return ScoreResult(valid=True, summaries={"train": summary}, counterexamples=example)


class FakeFitter:
    """Fits WRONG to `to` (CORRECT or PARTIAL); leaves anything else unchanged."""

    def __init__(self, to: str = CORRECT):
        self.to = to
        self.calls: list[str] = []

    def __call__(self, source: str):
        self.calls.append(source)
        changed = ({"name": "GRAVITY", "old": 9.81, "new": 9.8},) if source == WRONG else ()
        program = self.to if changed else source
        after = types.SimpleNamespace(train_accuracy=VALUES[program][1], test_accuracy=VALUES[program][1])
        return types.SimpleNamespace(valid=True, program=program, changed=changed, after=after)


def failed_fit(source: str):
    """What `Sandbox.fit` returns when the fit failed or timed out: no accuracies, the input as program."""
    return types.SimpleNamespace(valid=False, program=source, changed=(), before=None, after=None,
                                 error="fitting took longer than 300 s and was stopped")


def fenced(program: str, explanation: str = "") -> str:
    head = f"## Error explanation\n{explanation}\n\n## Correct code\n" if explanation else ""
    return f"{head}```python\n{program}```\n"


class FakeLLM:
    """Generate answers `generate`; improve answers CORRECT; fix answers WRONG."""

    def __init__(self, generate: str = WRONG):
        self.generate = generate
        self.prompts: list[str] = []

    async def complete(self, messages, **kwargs):
        user = messages[-1]["content"]
        self.prompts.append(user)
        if "predicts this recorded transition" in user:
            text = fenced(CORRECT, "gravity is 9.8")
        elif "was rejected with this error" in user:
            text = fenced(WRONG, "use jnp.where")
        else:
            text = fenced(self.generate)
        return [Completion(text=text, index=0, finish_reason="stop", cached=False, prompt_tokens=7,
                           completion_tokens=5, tokens_estimated=False)]


def run(method, llm, *, budget: int, **kwargs) -> Harness:
    harness = Harness(llm, fake_score, budget=budget, **kwargs)
    asyncio.run(harness.run(method))
    return harness


@pytest.mark.parametrize("make", [GifMcts, WorldCoder, ZeroShot])
def test_fit_step_makes_a_node_without_an_llm_call(make, tmp_path):
    fitter = FakeFitter()
    method = make(SPEC)
    harness = run(method, FakeLLM(), budget=3, fit=fitter, out_dir=tmp_path)
    assert method.solved and harness.calls == 1 and harness.fits == 1 and fitter.calls == [WRONG]
    generated, fitted = method.nodes[1:]
    assert (fitted.action, fitted.parent, fitted.program, fitted.value) == ("fit", generated.id, CORRECT, 1.0)
    assert fitted.prompt_hash == "" and fitted.tokens == 0 and fitted.note.endswith("GRAVITY 9.81 -> 9.8")
    log = [json.loads(line) for line in (tmp_path / "tree.jsonl").read_text().splitlines()]
    assert [r["action"] for r in log] == ["generate", "fit"] and "+GRAVITY = 9.8" in log[1]["diff"]


def test_without_a_fitter_the_same_run_needs_more_calls():
    method = GifMcts(SPEC)
    harness = run(method, FakeLLM(), budget=1)
    assert not method.solved and harness.fits == 0 and [n.action for n in method.nodes[1:]] == ["generate"]


def test_a_failed_fit_adds_no_node_and_the_search_goes_on():
    method = GifMcts(SPEC)
    harness = run(method, FakeLLM(), budget=3, fit=failed_fit)
    # generate WRONG, generate WRONG again (both fitted, both failed), improve: CORRECT.
    assert [n.action for n in method.nodes[1:]] == ["generate", "generate", "improve"] and method.solved
    assert harness.fit_attempts == 2 and harness.fits == 0 and harness.calls == 3


def test_fit_runs_only_on_working_imperfect_programs():
    fitter = FakeFitter()
    run(GifMcts(SPEC), FakeLLM(generate=BUGGY), budget=2, fit=fitter)
    assert fitter.calls == [WRONG]  # the buggy generate is not fitted; its fix (WRONG) is
    fitter = FakeFitter()
    run(GifMcts(SPEC), FakeLLM(generate=CORRECT), budget=2, fit=fitter)
    assert fitter.calls == []  # a perfect program is not fitted


def test_improve_then_sees_the_fitted_program_and_its_counterexample():
    llm = FakeLLM()
    method = GifMcts(SPEC)
    # Strict values: generate 0.5, fit 0.9. At the fit node (1 visit) improve's prior 0.55 beats the
    # generate estimate (0.5 * 2 + 0.5) / 3 = 0.5; under the paper value (1 + 0.8) / 3 = 0.6 would win.
    run(method, llm, budget=2, fit=FakeFitter(to=PARTIAL), value_metric="strict")
    assert [n.action for n in method.nodes[1:]] == ["generate", "fit", "improve"]
    improve_prompt = llm.prompts[1]
    assert "GRAVITY = 9.805" in improve_prompt and f"(source {len(PARTIAL)})" in improve_prompt
    assert method.nodes[3].parent == method.nodes[2].id and method.solved


@pytest.mark.parametrize("metric, expected", [("paper", 0.8), ("strict", 0.5)])
def test_search_value_metric(metric, expected):
    method = ZeroShot(SPEC)
    run(method, FakeLLM(), budget=1, value_metric=metric)
    node = method.nodes[1]
    assert node.value == expected and node.metrics == {"paper": 0.8, "strict": 0.5}


def test_nodes_record_feedback_explanation_and_raw_answer():
    method = GifMcts(SPEC)
    run(method, FakeLLM(generate=BUGGY), budget=2)
    generated, fixed = method.nodes[1:]
    assert fixed.action == "fix" and fixed.feedback == generated.error == "line 2: `if` on a traced value"
    assert fixed.explanation == "## Error explanation\nuse jnp.where" and "```python" in fixed.completion
    record = fixed.log_record(generated.program, method.log_fields(fixed))  # as the harness writes it
    assert record["feedback"] == fixed.feedback and record["visits"] == 1 and "-if x:" in record["diff"]


def test_an_answer_repeating_the_prompts_program_is_noted():
    class Lazy(FakeLLM):
        async def complete(self, messages, **kwargs):
            [completion] = await super().complete(messages, **kwargs)
            if "predicts this recorded transition" in messages[-1]["content"]:
                completion = Completion(fenced(WRONG, "no change needed"), 0, "stop", False, 1, 1, False)
            return [completion]

    method = WorldCoder(SPEC)
    run(method, Lazy(), budget=2)
    assert method.nodes[2].note == "the answer's only program repeats the program in the prompt"


@pytest.mark.parametrize("k", [1, 3])
def test_concurrency_keeps_k_calls_in_flight(k):
    with LLMTestServer(responder=lambda request: fenced(WRONG), latency=0.3) as server:
        config = LLMConfig(model=server.model, base_url=server.base_url, max_retries=0)

        async def main():
            async with LLMClient(config) as client:
                harness = Harness(client, fake_score, budget=6, concurrency=k)
                await harness.run(GifMcts(SPEC))
                return harness

        harness = asyncio.run(main())
        assert harness.calls == 6 and server.max_in_flight == k


def test_sampling_parameters_reach_the_server():
    with LLMTestServer(responder=lambda request: fenced(CORRECT)) as server:
        config = LLMConfig(model=server.model, base_url=server.base_url, max_retries=0)

        async def main(sampling):
            async with LLMClient(config) as client:
                await Harness(client, fake_score, budget=1, sampling=sampling).run(ZeroShot(SPEC))

        asyncio.run(main(Sampling()))
        asyncio.run(main(Sampling(top_p=0.8, max_tokens=1500)))
        first, second = server.chat_requests
        assert first["max_tokens"] == 4096 and "top_p" not in first
        assert second["max_tokens"] == 1500 and second["top_p"] == 0.8


def test_prefill_starts_the_answer_and_the_server_continues_it():
    def continuing(request):
        last = request["messages"][-1]
        return CORRECT + "```\n" if last["role"] == "assistant" else "no prefill seen"

    with LLMTestServer(responder=continuing) as server:
        config = LLMConfig(model=server.model, base_url=server.base_url, max_retries=0)
        method = ZeroShot(SPEC)

        async def main():
            async with LLMClient(config) as client:
                await Harness(client, fake_score, budget=1, sampling=Sampling(prefill=True)).run(method)

        asyncio.run(main())
        [body] = server.chat_requests
        assert body["messages"][-1] == {"role": "assistant", "content": "```python\n"}
        assert body["continue_final_message"] is True
        assert method.nodes[1].program == CORRECT and method.nodes[1].completion.startswith("```python\n")


def test_a_candidate_whose_extraction_or_scoring_fails_is_buggy_and_the_run_goes_on(monkeypatch):
    """Issue 18: an exception while handling one answer marks its node buggy; the search goes on."""
    import synth.search.harness as harness_module

    answers = iter([RecursionError("maximum recursion depth exceeded during ast construction")])

    def extract(text, **kwargs):
        failure = next(answers, None)
        if failure is not None:
            raise failure
        return real_extract(text, **kwargs)

    def score(source):
        if source == WRONG:
            raise ValueError("counterexample formatting failed")
        return fake_score(source)

    real_extract = harness_module.extract_code
    monkeypatch.setattr(harness_module, "extract_code", extract)
    method = GifMcts(SPEC)
    harness = Harness(FakeLLM(), score, budget=3)
    asyncio.run(harness.run(method))
    first, second = method.nodes[1:3]
    assert first.buggy and "could not be extracted" in first.note and "no Python code" in first.error
    assert second.buggy and "could not be scored: ValueError: counterexample formatting failed" in second.error
    assert harness.calls == 3
