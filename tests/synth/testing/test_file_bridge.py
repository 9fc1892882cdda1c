"""The file bridge: a request becomes a file, the answer file becomes the completion."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from synth.testing.file_bridge import file_responder
from synth.testing.llm_server import LLMTestServer


def _answer_when_asked(folder, text: str) -> threading.Thread:
    def run() -> None:
        deadline = time.monotonic() + 10
        while not (folder / "request-0000.md").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        (folder / "answer-0000.md").write_text(text, encoding="utf-8")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_request_written_and_answer_returned(tmp_path):
    answerer = _answer_when_asked(tmp_path, "```python\ndef step(s, a):\n    return s, 0.0, False\n```")
    with LLMTestServer(responder=file_responder(tmp_path, poll_s=0.02), n_mode="one") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        reply = client.chat.completions.create(
            model=server.model,
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "write step"}],
        )
    answerer.join()
    request = (tmp_path / "request-0000.md").read_text(encoding="utf-8")
    assert "## system\n\nbe brief" in request and "## user\n\nwrite step" in request
    assert reply.choices[0].message.content.startswith("```python\ndef step(s, a):")


def test_no_answer_times_out(tmp_path):
    respond = file_responder(tmp_path, poll_s=0.01, timeout_s=0.05)
    with pytest.raises(TimeoutError, match="answer-0000.md"):
        respond({"messages": [{"role": "user", "content": "hi"}]})
