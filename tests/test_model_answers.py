"""Real-model answers end to end: extraction (synth/llm/extract.py), validation, loading, and
for accepted answers the train accuracy; rejected ones get the message an LLM can act on."""

import pytest

from cwm_jax.score import accuracy
from cwm_jax.data import transitions as data
from cwm_jax.validate import loader
from cwm_jax.errors import CWMError
from synth.llm.extract import extract_code
from tests.model_answers import ANSWERS

_scores: dict[str, float] = {}  # extracted code -> accuracy: identical programs compile once


@pytest.fixture(scope="module")
def train():
    return data.load_split("CartPole", "train")


def test_corpus_is_large_and_covers_the_styles():
    assert len(ANSWERS) >= 30
    for style in ("gpt4o_", "llama3_", "qwen_"):
        assert sum(a.name.startswith(style) for a in ANSWERS) >= 8
    assert sum(a.accuracy is not None for a in ANSWERS) >= 12 and sum(bool(a.kind) for a in ANSWERS) >= 12
    assert all((a.accuracy is None) != (not a.kind) for a in ANSWERS), "each answer names exactly one outcome"


@pytest.mark.parametrize("answer", ANSWERS, ids=lambda a: a.name)
def test_model_answer_outcome(answer, train):
    code = extract_code(answer.text).code
    if answer.kind:
        with pytest.raises(CWMError) as info:
            loader.load_cwm(code, "CartPole", check_finite=False)
        message = str(info.value)
        assert info.value.kind == answer.kind, message
        positions = [message.find(fragment) for fragment in answer.mentions]
        assert -1 not in positions and positions == sorted(positions), message
        return
    if code not in _scores:
        step = loader.load_cwm(code, "CartPole", check_finite=False)
        _scores[code] = accuracy.check(step, train).accuracy
    assert _scores[code] == pytest.approx(answer.accuracy, abs=1e-4)
