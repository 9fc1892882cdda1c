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
from synth.search.protocol import Request
from synth.search.node import Node, split_node_record

__all__ = ["THOMPSON_C", "BetaPosterior", "WorldCoder", "ZeroShot"]

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

    def log_fields(self, node: Node) -> dict:
        """This method's statistics of `node` for the tree log (none)."""
        return {}

    def state_dict(self) -> dict:
        state = self.rng.getstate()
        return {"rng": [state[0], list(state[1]), state[2]], "nodes": [dataclasses.asdict(n) for n in self.nodes]}

    def load_state_dict(self, state: dict) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.nodes = [split_node_record(n)[0] for n in state["nodes"]]
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


@dataclasses.dataclass
class BetaPosterior:
    """WorldCoder's posterior of one program: Beta(alpha + C * r, beta + C * (1 - r))."""

    alpha: float = 1.0
    beta: float = 1.0


class WorldCoder(_Flat):
    """One generate, then Thompson-sampled refinement of any program so far."""

    name = "worldcoder"

    def __init__(self, spec: EnvSpec, *, seed: int = 0):
        super().__init__(spec, seed=seed)
        self.posteriors: dict[int, BetaPosterior] = {}  # node id -> posterior (the prior when absent)

    def posterior(self, node_id: int) -> BetaPosterior:
        """The posterior counts of a program (the prior, alpha = beta = 1, until an outcome is counted)."""
        return self.posteriors.get(node_id, BetaPosterior())

    def log_fields(self, node: Node) -> dict:
        """The program's posterior counts for the tree log."""
        return dataclasses.asdict(self.posterior(node.id)) if node.action != "root" else {}

    def state_dict(self) -> dict:
        return {**super().state_dict(),
                "posteriors": {str(i): dataclasses.asdict(p) for i, p in sorted(self.posteriors.items())}}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "posteriors" in state:
            self.posteriors = {int(i): BetaPosterior(**p) for i, p in state["posteriors"].items()}
        else:  # format 2: alpha and beta were fields of the node records
            self.posteriors = {n["id"]: BetaPosterior(alpha=n.get("alpha", 1.0), beta=n.get("beta", 1.0))
                               for n in state["nodes"] if n["action"] != "root"}

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
            prior = self.posterior(node.id)
            draws.append(self.rng.betavariate(prior.alpha + THOMPSON_C * r, prior.beta + THOMPSON_C * (1 - r)))
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
            parent = self.posteriors.setdefault(request.parent, BetaPosterior())
            if not node.buggy and node.value >= 1.0:
                parent.alpha += 1
            else:
                parent.beta += 1
