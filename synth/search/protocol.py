"""What a search method and the harness exchange: the method protocol, its requests, sampling, fit reports.

A method (GIF-MCTS, WorldCoder, zero-shot) only decides what to ask next
(`propose`, a `Request`) and what to do with the answer (`integrate`); the
harness (`synth.search.harness`) does the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from synth import prompts
from synth.search.node import Node

__all__ = ["FitReport", "Fitter", "Method", "Request", "Sampling"]


class FitReport(Protocol):
    """What the harness reads of a fitter's report (`cwm_jax.sandbox.Sandbox.fit` returns a `cwm_jax.fit.fitting.FitReport`).

    Only these fields: an invalid report (rejected, failed or timed-out fit)
    has `before`/`after` None, and its `program` is the input.
    """

    valid: bool
    program: str
    changed: Any  # [{"name", "old", "new"}] for each constant written back; empty if nothing improved


Fitter = Callable[[str], FitReport]  # program source -> report (the environment is bound)


@dataclasses.dataclass(frozen=True)
class Request:
    """One LLM call a method asks for: an expansion of `parent` by `action`."""

    parent: int
    action: str
    messages: prompts.Messages
    ticket: Any = None  # method-private bookkeeping (e.g. the selection path)
    program: str = ""  # the program the prompt shows (improve, fix), to spot an answer that repeats it
    feedback: str = ""  # the counterexample or error the prompt shows


class Method(Protocol):
    name: str
    nodes: list[Node]

    def propose(self) -> Request | None: ...

    def integrate(self, request: Request, node: Node | None) -> None: ...

    def integrate_fit(self, parent_id: int, node: Node) -> None: ...

    def log_fields(self, node: Node) -> dict:
        """The method's own statistics of `node` (kept by node id, not in the shared `Node`) for the tree log."""
        ...

    @property
    def solved(self) -> bool: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclasses.dataclass(frozen=True)
class Sampling:
    """Sampling parameters sent with every call (None: the server's default).

    `prefill` starts the assistant's answer (a python fence for generate, the
    first heading for improve and fix) and asks the server to continue it
    (vLLM's `continue_final_message`); the answer is read as prefill + completion.
    """

    temperature: float | None = 1.0
    top_p: float | None = None
    max_tokens: int | None = 4096
    prefill: bool = False
