"""GIF-MCTS (Dainese et al., NeurIPS 2024): MCTS over programs with generate, improve and fix.

Nodes are programs; each expansion is one LLM call. The root offers only
generate; a working node offers generate and improve; a buggy node (rejected
by the validator, the loader or the scorer) offers only fix, at most
MAX_FIXES times in a chain, with temporary values 0.99 / 0.66 / 0.33 / 0
that are never backed up. Every node type keeps one unexpanded slot per
action it offers, so the tree widens as slots are taken (as in the paper).

Selection is UCT with C = 0.1 and epsilon = 1. Unexpanded slots are valued
by `ActionValueModel` and explored with the count of same-type siblings.
Values are train-split accuracies; backup adds a leaf's value to every
ancestor (a node's value is its subtree's mean); buggy leaves back up a
visit only. The search stops at accuracy 1.0.

Where the paper and its code differ we follow the paper and say so:
- A generate node keeps its parent's prefix plus L = 2 new lines as its
  state; the code keeps one more line per level (an off-by-one).
- Improve shows the first mispredicted transition in data order, as both do.

Parallel expansion (beyond the paper): with k calls in flight, every node on
a pending path gets a virtual visit (value 0), and a pending slot counts as a
same-type sibling, so concurrent selections spread over the tree.
"""

from __future__ import annotations

import dataclasses
import math
import random

from cwm_jax.envs import EnvSpec
from synth import prompts
from synth.harness import Request
from synth.tree import (
    MAX_FIXES,
    NEW_LINES_PER_GENERATE,
    UCT_C,
    UCT_EPSILON,
    ActionValueModel,
    Node,
    buggy_value,
)

ALL_ACTIONS = ("generate", "improve", "fix")


class GifMcts:
    """The search state; driven by `synth.harness.Harness`.

    Args:
      spec: the environment.
      seed: seeds the random tie-breaks.
      actions: the action types allowed; drop one for the paper's ablations
        (e.g. ("generate", "improve") is "no fix").
    """

    name = "gif-mcts"

    def __init__(self, spec: EnvSpec, *, seed: int = 0, actions: tuple[str, ...] = ALL_ACTIONS):
        unknown = set(actions) - set(ALL_ACTIONS)
        if unknown or "generate" not in actions:
            raise ValueError(f"actions must include 'generate' and be among {ALL_ACTIONS}, got {actions}")
        self.spec = spec
        self.actions = tuple(actions)
        self.rng = random.Random(seed)
        self.values = ActionValueModel()
        self.nodes = [Node(id=0, parent=None, action="root")]
        self.pending: dict[tuple[int, str], int] = {}  # (parent, action) -> calls in flight
        self._solved = False

    # -- selection ------------------------------------------------------------------

    def open_actions(self, node: Node) -> list[str]:
        """Action types with an unexpanded slot at `node`."""
        if node.action == "root":
            wanted = ["generate"]
        elif node.buggy:
            # Fixes form a chain: one fix per buggy node, counting one in flight.
            has_fix = any(self.nodes[c].action == "fix" for c in node.children) or self.pending.get((node.id, "fix"))
            wanted = ["fix"] if node.fixes_left > 0 and not node.resolved and not has_fix else []
        else:
            wanted = []
            if len(node.program.splitlines()) > len(node.prefix.splitlines()):
                wanted.append("generate")  # the program has lines left to commit to
            if node.value < 1.0 and node.counterexample:
                wanted.append("improve")
        return [a for a in wanted if a in self.actions]

    def node_value(self, node: Node) -> float:
        if node.buggy and not node.resolved:
            return node.temp_value if node.temp_value is not None else 0.0
        return node.total / node.visits if node.visits else 0.0

    def _same_type(self, node: Node, action: str) -> int:
        return sum(self.nodes[c].action == action for c in node.children) + self.pending.get((node.id, action), 0)

    def _local_values(self, node: Node, action: str) -> list[float]:
        return [self.nodes[c].value for c in node.children if self.nodes[c].action == action]

    def _select(self) -> tuple[list[int], str] | None:
        """Descends by UCT to an unexpanded slot: (path of node ids, action type)."""
        path = [0]
        while True:
            node = self.nodes[path[-1]]
            log_n = math.log(max(node.visits, 1))
            options = []
            for action in self.open_actions(node):
                estimate = self.values.estimate(action, self._local_values(node, action))
                bonus = UCT_C * math.sqrt(log_n / (self._same_type(node, action) + UCT_EPSILON))
                options.append((estimate + bonus, ("slot", action)))
            for child_id in node.children:
                child = self.nodes[child_id]
                if child.dead:
                    continue
                bonus = UCT_C * math.sqrt(log_n / (child.visits + UCT_EPSILON))
                options.append((self.node_value(child) + bonus, ("child", child_id)))
            if not options:
                if any(parent == node.id for parent, _ in self.pending):
                    return None  # blocked until its call in flight returns
                node.dead = True  # nothing below: never select it again
                if node.id == 0:
                    return None
                path = [0]
                continue
            best = max(score for score, _ in options)
            kind, target = self.rng.choice([choice for score, choice in options if score == best])
            if kind == "slot":
                return path, target
            path.append(target)

    def propose(self) -> Request | None:
        selected = self._select()
        if selected is None:
            return None
        path, action = selected
        parent = self.nodes[path[-1]]
        if action == "generate":
            messages = prompts.generate(self.spec, parent.prefix)
        elif action == "improve":
            messages = prompts.improve(self.spec, parent.program, parent.counterexample)
        else:
            messages = prompts.fix(self.spec, parent.program, parent.error or "")
        for node_id in path:  # virtual loss: a visit worth 0 until the call returns
            self.nodes[node_id].visits += 1
        self.pending[(parent.id, action)] = self.pending.get((parent.id, action), 0) + 1
        return Request(parent=parent.id, action=action, messages=messages, ticket=path)

    # -- expansion and backup -------------------------------------------------------

    def integrate(self, request: Request, node: Node | None) -> None:
        path = request.ticket
        for node_id in path:
            self.nodes[node_id].visits -= 1
        key = (request.parent, request.action)
        self.pending[key] -= 1
        if not self.pending[key]:
            del self.pending[key]
        if node is None:
            return  # the LLM call failed: the slot stays open
        parent = self.nodes[request.parent]
        local = self._local_values(parent, request.action)
        node.id = len(self.nodes)
        self.nodes.append(node)
        parent.children.append(node.id)
        if request.action == "generate":
            keep = len(parent.prefix.splitlines()) + NEW_LINES_PER_GENERATE
            node.prefix = "\n".join(node.program.splitlines()[:keep])
        else:
            node.prefix = node.program  # improve and fix rewrite the whole program
        if node.buggy:
            self._integrate_buggy(parent, node, path)
        else:
            self._integrate_working(parent, node, path)
        self.values.update(request.action, local, 0.0 if node.buggy else node.value)
        if not node.buggy and node.value >= 1.0:
            self._solved = True

    def _fix_chain(self, node: Node) -> list[Node]:
        """The buggy ancestors joined to `node` by fix edges, nearest first."""
        chain = []
        while node.action == "fix":
            node = self.nodes[node.parent]
            if not node.buggy:
                break
            chain.append(node)
        return chain

    def _integrate_buggy(self, parent: Node, node: Node, path: list[int]) -> None:
        node.fixes_left = parent.fixes_left - 1 if node.action == "fix" else MAX_FIXES
        node.temp_value = buggy_value(node.fixes_left)
        node.visits = 1
        chain = self._fix_chain(node) if node.action == "fix" else []
        for member in chain:  # each failed fix lowers the chain's temporary value
            member.temp_value = node.temp_value
        if node.fixes_left == 0:
            node.dead = True
            for member in chain:
                member.dead = True
        # Visit-only backup: ancestors count the visit but keep their mean.
        for node_id in path:
            ancestor = self.nodes[node_id]
            if ancestor.visits:
                ancestor.total += ancestor.total / ancestor.visits
            ancestor.visits += 1

    def _integrate_working(self, parent: Node, node: Node, path: list[int]) -> None:
        node.visits, node.total = 1, node.value
        if node.action == "fix":
            for member in self._fix_chain(node):  # a successful fix resolves the whole chain
                member.resolved = True
                member.total = node.value * member.visits
        for node_id in path:
            ancestor = self.nodes[node_id]
            ancestor.visits += 1
            ancestor.total += node.value

    @property
    def solved(self) -> bool:
        return self._solved

    # -- checkpoint -----------------------------------------------------------------

    def state_dict(self) -> dict:
        state = self.rng.getstate()
        return {
            "actions": list(self.actions),
            "rng": [state[0], list(state[1]), state[2]],
            "values": self.values.state_dict(),
            "nodes": [dataclasses.asdict(n) for n in self.nodes],
            "solved": self._solved,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actions = tuple(state["actions"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.values.load_state_dict(state["values"])
        self.nodes = [Node(**n) for n in state["nodes"]]
        self.pending = {}
        self._solved = state["solved"]
