"""Baselines in the same harness and budget as GIF-MCTS.

- WorldCoder, as the GIF-MCTS paper re-implemented it: one generate, then
  Thompson sampling over all programs from Beta(1 + C*r, 1 + C*(1 - r)) with
  C = 5 and r the train accuracy; the picked program is fixed if buggy and
  improved otherwise. After each refinement the picked program's own
  posterior counts the outcome (alpha += 1 if the child is perfect, else
  beta += 1).
- Zero-shot: independent generate samples of the same prompt; the best is kept.

Both take fitted programs (`integrate_fit`) as children of the program they
fit: WorldCoder samples them like any program; zero-shot keeps the best.
"""

from __future__ import annotations

import dataclasses
import random

from cwm_jax.envs import EnvSpec
from synth import prompts
from synth.harness import Request
from synth.tree import Node

THOMPSON_C = 5.0


class _Flat:
    """Shared bookkeeping of methods whose programs hang off the root or each other."""

    name = ""

    def __init__(self, spec: EnvSpec, *, seed: int = 0):
        self.spec = spec
        self.rng = random.Random(seed)
        self.nodes = [Node(id=0, parent=None, action="root")]
        self.inflight = 0

    def _add(self, parent: int, node: Node) -> None:
        node.id = len(self.nodes)
        node.parent = parent
        self.nodes.append(node)
        self.nodes[parent].children.append(node.id)

    def integrate_fit(self, parent_id: int, node: Node) -> None:
        """A fitted program (no LLM call) joins the pool as a child of the program it fits."""
        self._add(parent_id, node)

    @property
    def solved(self) -> bool:
        return any(not n.buggy and n.value >= 1.0 for n in self.nodes[1:])

    def state_dict(self) -> dict:
        state = self.rng.getstate()
        return {"rng": [state[0], list(state[1]), state[2]], "nodes": [dataclasses.asdict(n) for n in self.nodes]}

    def load_state_dict(self, state: dict) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.nodes = [Node(**n) for n in state["nodes"]]
        self.inflight = 0


class ZeroShot(_Flat):
    """N independent generate samples; the best one is kept."""

    name = "zero-shot"

    def propose(self) -> Request | None:
        self.inflight += 1
        return Request(parent=0, action="generate", messages=prompts.generate(self.spec))

    def integrate(self, request: Request, node: Node | None) -> None:
        self.inflight -= 1
        if node is not None:
            self._add(request.parent, node)


class WorldCoder(_Flat):
    """One generate, then Thompson-sampled refinement of any program so far."""

    name = "worldcoder"

    def propose(self) -> Request | None:
        programs = self.nodes[1:]
        if not programs:
            if self.inflight and len(self.nodes) == 1:
                return None  # wait for the first generate
            self.inflight += 1
            return Request(parent=0, action="generate", messages=prompts.generate(self.spec))
        draws = []
        for node in programs:
            r = 0.0 if node.buggy else node.value
            draws.append(self.rng.betavariate(node.alpha + THOMPSON_C * r, node.beta + THOMPSON_C * (1 - r)))
        picked = programs[max(range(len(programs)), key=draws.__getitem__)]
        self.inflight += 1
        if picked.buggy:
            return Request(parent=picked.id, action="fix", program=picked.program, feedback=picked.error or "",
                           messages=prompts.fix(self.spec, picked.program, picked.error or ""))
        return Request(parent=picked.id, action="improve", program=picked.program, feedback=picked.counterexample,
                       messages=prompts.improve(self.spec, picked.program, picked.counterexample))

    def integrate(self, request: Request, node: Node | None) -> None:
        self.inflight -= 1
        if node is None:
            return
        self._add(request.parent, node)
        if request.parent:
            parent = self.nodes[request.parent]
            if not node.buggy and node.value >= 1.0:
                parent.alpha += 1
            else:
                parent.beta += 1
