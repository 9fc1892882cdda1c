"""A file bridge: an OpenAI-compatible endpoint answered by whoever writes files.

The loopback server (`LLMTestServer`) hands each chat request to a responder
that writes the request's messages to `DIR/request-NNNN.md` and waits for
`DIR/answer-NNNN.md`; the answer file's text is the completion. A model
reached some other way (a person, an agent, a model behind another tool)
answers by writing that file, from the request text alone. Use it for a few
decisive synthesis runs, not in tests of the search:

    python -m synth.testing.file_bridge --dir runs/bridge        # prints the base URL
    cwm-jax synth --env ... --base-url URL --model bridge --out runs/x

Requests are numbered in arrival order; with several in flight each waits for
its own answer. A request with n > 1 gets one file per choice.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from pathlib import Path
from typing import Any

from synth.testing.llm_server import LLMTestServer, Responder

__all__ = ["file_responder", "render_request", "main"]


def render_request(request: dict[str, Any]) -> str:
    """The request's messages as markdown, one `## role` section each."""
    parts = [f"## {m.get('role', '?')}\n\n{m.get('content', '')}\n" for m in request.get("messages", [])]
    return "\n".join(parts)


def file_responder(folder: Path, *, poll_s: float = 0.5, timeout_s: float | None = None) -> Responder:
    """A responder that writes each request to `folder` and returns the answer file's text.

    Raises TimeoutError when no answer arrives within `timeout_s` (None: wait forever).
    """
    folder.mkdir(parents=True, exist_ok=True)
    numbers = itertools.count()
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> str:
        with lock:
            k = next(numbers)
        request_path = folder / f"request-{k:04d}.md"
        answer_path = folder / f"answer-{k:04d}.md"
        partial = request_path.with_suffix(".tmp")
        partial.write_text(render_request(request), encoding="utf-8")
        partial.replace(request_path)
        print(f"waiting for {answer_path}", flush=True)
        started = time.monotonic()
        while not answer_path.exists():
            if timeout_s is not None and time.monotonic() - started > timeout_s:
                raise TimeoutError(f"no answer in {answer_path} after {timeout_s:.0f} s")
            time.sleep(poll_s)
        time.sleep(poll_s)  # let a writer that is not atomic finish
        return answer_path.read_text(encoding="utf-8")

    return respond


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.testing.file_bridge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="folder for request-NNNN.md / answer-NNNN.md")
    parser.add_argument("--model", default="bridge", help="model name the endpoint serves (default: bridge)")
    args = parser.parse_args(argv)
    server = LLMTestServer(responder=file_responder(args.dir), models=(args.model,), n_mode="one")
    with server:
        print(f"serving {args.model!r} at {server.base_url} (requests in {args.dir}); Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
