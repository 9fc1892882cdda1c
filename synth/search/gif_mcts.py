"""GIF-MCTS (Dainese et al., NeurIPS 2024): MCTS over programs with generate, improve and fix.

Nodes are programs; each expansion is one LLM call. The root offers only
generate; every working node offers generate (while its program has lines
beyond its state) and improve (while it is not perfect); a buggy node
(rejected by the validator, the loader or the scorer) offers only fix, at
most MAX_FIXES times in a chain, with temporary values 0.99 / 0.66 / 0.33 / 0
that are never backed up. Every node type keeps one unexpanded slot per
action it offers, so the tree widens as slots are taken (as in the paper).

A node's state (`prefix`) is the first (parent's state lines + L) lines of
its program, whatever the action that made it (the authors' parser does the
same for generate, improve and fix); a generate child is asked to continue
from it. L = 2.

Selection is UCT with C = 0.1 and epsilon = 1. Unexpanded slots are valued
by `ActionValueModel` and explored with the count of same-type siblings.
Values are train-split values (`--value paper|strict`); backup adds a leaf's
value to every ancestor (a node's value is its subtree's mean); buggy leaves
back up a visit only. The search stops at value 1.0.

Where the paper and its code differ we follow the paper and say so:
- the paper's L = 2 new lines per level; the code keeps one more line per
  level (an off-by-one);
- improve shows the first mispredicted transition in data order, as both do.
Beyond the paper (docs/search.md; `paper_faithful=True` turns the first three off):
- plateau: a working child that repeats any earlier program of the tree
  (same text after normalisation, or the same fingerprint: the same
  transitions and elements right and the same first counterexample, float
  noise and signed zeros aside), or a generate child with its parent's
  value and first failing transition, is no progress; it counts 0 for its
  action's value estimate (global mean and local mean), though it keeps its
  own value in the tree.
- escape: after a plateau made by a generate or fix child (a repeat, or a
  child no better than its parent) the next call is an improve of the
  better of the two, which shows the counterexample.
- a generate prompt that continues a prefix says what the program it was
  taken from scored and where it failed first.
- fit (`integrate_fit`): a program with its constants fitted to the data is
  a child of its own, action "fit", made without an LLM call (on unless the
  harness is given no fitter, `--no-fit`).

Parallel expansion (beyond the paper): with k calls in flight, every node on
a pending path gets a virtual visit (value 0), and a pending slot counts as a
same-type sibling, so concurrent selections spread over the tree.
"""

from __future__ import annotations

import dataclasses
import random

from cwm_jax.envs import EnvSpec
from synth import prompts
from synth.search.protocol import Request
from synth.search.gif_mcts_values import (
    MAX_FIXES,
    NEW_LINES_PER_GENERATE,
    ActionValueModel,
    NodeStats,
    buggy_value,
    uct_score,
)
from synth.search.node import Node, first_failure, normalized_program, split_node_record

__all__ = ["ALL_ACTIONS", "GifMcts"]

ALL_ACTIONS = ("generate", "improve", "fix")


class GifMcts:
    """The search state; driven by `synth.search.harness.Harness`.

    Args:
      spec: the environment.
      seed: seeds the random tie-breaks.
      actions: the action types allowed; drop one for the paper's ablations
        (e.g. ("generate", "improve") is "no fix").
      paper_faithful: the paper's exact search: a child that repeats an
        earlier program counts like any other (no plateau detection), no
        improve is forced after a plateau, and a prefix's generate prompt
        does not say what the earlier program scored.
    """

    name = "gif-mcts"

    def __init__(self, spec: EnvSpec, *, seed: int = 0, actions: tuple[str, ...] = ALL_ACTIONS,
                 paper_faithful: bool = False):
        unknown = set(actions) - set(ALL_ACTIONS)
        if unknown or "generate" not in actions:
            raise ValueError(f"actions must include 'generate' and be among {ALL_ACTIONS}, got {actions}")
        self.spec = spec
        self.actions = tuple(actions)
        self.paper_faithful = paper_faithful
        self.rng = random.Random(seed)
        self.values = ActionValueModel()
        self.nodes = [Node(id=0, parent=None, action="root")]
        self.stats = {0: NodeStats()}  # node id -> this search's statistics of it
        self.pending: dict[tuple[int, str], int] = {}  # (parent, action) -> calls in flight
        self.escape: int | None = None  # after a plateau: the node whose improve is the next call
        self._solved = False

    # -- selection ------------------------------------------------------------------

    def open_actions(self, node: Node) -> list[str]:
        """Action types with an unexpanded slot at `node`."""
        if node.action == "root":
            wanted = ["generate"]
        elif node.buggy:
            # Fixes form a chain: one fix per buggy node, counting one in flight.
            has_fix = any(self.nodes[c].action == "fix" for c in node.children) or self.pending.get((node.id, "fix"))
            stats = self.stats[node.id]
            wanted = ["fix"] if stats.fixes_left > 0 and not stats.resolved and not has_fix else []
        else:
            wanted = []
            if len(node.program.splitlines()) > len(self.stats[node.id].prefix.splitlines()):
                wanted.append("generate")  # the program has lines left to commit to
            if node.value < 1.0 and node.counterexample:
                wanted.append("improve")
        return [a for a in wanted if a in self.actions]

    def node_value(self, node: Node) -> float:
        """A buggy node's temporary value until its fix chain succeeds, else its backed-up mean (0 unvisited)."""
        stats = self.stats[node.id]
        if node.buggy and not stats.resolved:
            return stats.temp_value if stats.temp_value is not None else 0.0
        return stats.total / stats.visits if stats.visits else 0.0

    def _same_type(self, node: Node, action: str) -> int:
        return sum(self.nodes[c].action == action for c in node.children) + self.pending.get((node.id, action), 0)

    def _outcome(self, node: Node) -> float:
        """What an expansion that made `node` was worth to its action type: 0 if buggy or a repeat."""
        if node.buggy or (node.repeat_of is not None and not self.paper_faithful):
            return 0.0
        return node.value

    def _local_values(self, node: Node, action: str) -> list[float]:
        """v_L's terms: the backed-up values of `node`'s expanded `action` children, as the authors'
        code (a buggy child's temporary value included); a repeat counts 0 (plateau)."""
        values = []
        for c in node.children:
            child = self.nodes[c]
            if child.action == action:
                repeat = child.repeat_of is not None and not self.paper_faithful
                values.append(0.0 if repeat else self.node_value(child))
        return values

    def _select(self) -> tuple[list[int], str] | None:
        """Descends by UCT to an unexpanded slot: (path of node ids, action type)."""
        path = [0]
        while True:
            node = self.nodes[path[-1]]
            visits = self.stats[node.id].visits
            options = []
            for action in self.open_actions(node):
                estimate = self.values.estimate(action, self._local_values(node, action))
                options.append((uct_score(estimate, visits, self._same_type(node, action)), ("slot", action)))
            for child_id in node.children:
                child = self.stats[child_id]
                if child.dead:
                    continue
                options.append((uct_score(self.node_value(self.nodes[child_id]), visits, child.visits),
                                ("child", child_id)))
            if not options:
                if any(parent == node.id for parent, _ in self.pending):
                    return None  # blocked until its call in flight returns
                self.stats[node.id].dead = True  # nothing below: never select it again
                if node.id == 0:
                    return None
                path = [0]
                continue
            best = max(score for score, _ in options)
            kind, target = self.rng.choice([choice for score, choice in options if score == best])
            if kind == "slot":
                return path, target
            path.append(target)

    def _path(self, node_id: int) -> list[int]:
        """Node ids from the root down to `node_id`."""
        path = [node_id]
        while self.nodes[path[-1]].parent is not None:
            path.append(self.nodes[path[-1]].parent)
        return path[::-1]

    def _escaping(self) -> tuple[list[int], str] | None:
        """The improve owed after a plateau, if its slot is open (then it is taken: one call per plateau)."""
        target, self.escape = self.escape, None
        if target is None or "improve" not in self.open_actions(self.nodes[target]):
            return None
        return self._path(target), "improve"

    def propose(self) -> Request | None:
        selected = self._escaping() or self._select()
        if selected is None:
            return None
        path, action = selected
        parent = self.nodes[path[-1]]
        shown, feedback = "", ""
        if action == "generate":
            earlier = None if self.paper_faithful or parent.action == "root" else (parent.value, parent.counterexample)
            messages = prompts.generate(self.spec, self.stats[parent.id].prefix, earlier=earlier)
        elif action == "improve":
            shown, feedback = parent.program, parent.counterexample
            messages = prompts.improve(self.spec, shown, feedback)
        else:
            shown, feedback = parent.program, parent.error or ""
            messages = prompts.fix(self.spec, shown, feedback)
        for node_id in path:  # virtual loss: a visit worth 0 until the call returns
            self.stats[node_id].visits += 1
        self.pending[(parent.id, action)] = self.pending.get((parent.id, action), 0) + 1
        return Request(parent=parent.id, action=action, messages=messages, ticket=path, program=shown,
                       feedback=feedback)

    # -- expansion and backup -------------------------------------------------------

    def integrate(self, request: Request, node: Node | None) -> None:
        path = request.ticket
        for node_id in path:
            self.stats[node_id].visits -= 1
        key = (request.parent, request.action)
        self.pending[key] -= 1
        if not self.pending[key]:
            del self.pending[key]
        if node is None:
            return  # the LLM call failed: the slot stays open
        parent = self.nodes[request.parent]
        local = self._local_values(parent, request.action)
        self._attach(parent, node)
        if node.buggy:
            self._integrate_buggy(parent, node, path)
        else:
            self._integrate_working(parent, node, path)
        self.values.update(request.action, local, self._outcome(node))
        if not node.buggy and node.value >= 1.0:
            self._solved = True
        elif not self.paper_faithful and self._plateau(parent, node):
            better = node if node.value > parent.value else parent
            self.escape = better.repeat_of if better.repeat_of is not None else better.id

    def _plateau(self, parent: Node, node: Node) -> bool:
        """A working generate or fix child that repeats an earlier program or is no better than its
        (working) parent: the model was not shown what is wrong, so the next call should show it."""
        if node.buggy or node.action not in ("generate", "fix"):
            return False
        return node.repeat_of is not None or (not parent.buggy and parent.action != "root"
                                              and node.value <= parent.value)

    def integrate_fit(self, parent_id: int, node: Node) -> None:
        """Adds `node`, the program of `parent_id` with fitted constants (no LLM call), as its child.

        It is backed up like an expansion (one more visit on the path), but it
        teaches the value model nothing: fit is not an action the LLM is asked for.
        """
        parent = self.nodes[parent_id]
        self._attach(parent, node, new_lines=0)
        path = []
        ancestor: Node | None = parent
        while ancestor is not None:
            path.append(ancestor.id)
            ancestor = self.nodes[ancestor.parent] if ancestor.parent is not None else None
        self._integrate_working(parent, node, path[::-1])
        if node.value >= 1.0:
            self._solved = True

    def _attach(self, parent: Node, node: Node, *, new_lines: int = NEW_LINES_PER_GENERATE) -> None:
        """Gives `node` its id, its state (prefix) and, for a working program, what it repeats."""
        node.id, node.parent = len(self.nodes), parent.id
        keep = len(self.stats[parent.id].prefix.splitlines()) + new_lines
        self.stats[node.id] = NodeStats(prefix="\n".join(node.program.splitlines()[:keep]))
        if not node.buggy:
            node.repeat_of = self._repeated(parent, node)
        self.nodes.append(node)
        parent.children.append(node.id)

    def _repeated(self, parent: Node, node: Node) -> int | None:
        """The earliest working program of the tree that `node` repeats, or None.

        A repeat has the same normalised text or the same fingerprint; a
        generate child with its parent's value and first failing transition
        repeats its parent.
        """
        if (node.action == "generate" and parent.action != "root" and not parent.buggy
                and node.value == parent.value and node.counterexample
                and first_failure(node.counterexample) == first_failure(parent.counterexample)):
            return parent.id
        text = normalized_program(node.program)
        for other in self.nodes:
            if other.action == "root" or other.buggy or other is node:
                continue
            if (node.fingerprint and node.fingerprint == other.fingerprint) or normalized_program(other.program) == text:
                return other.id
        return None

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
        stats = self.stats[node.id]
        stats.fixes_left = self.stats[parent.id].fixes_left - 1 if node.action == "fix" else MAX_FIXES
        stats.temp_value = buggy_value(stats.fixes_left)
        stats.visits = 1
        chain = [self.stats[m.id] for m in self._fix_chain(node)] if node.action == "fix" else []
        for member in chain:  # each failed fix lowers the chain's temporary value
            member.temp_value = stats.temp_value
        if stats.fixes_left == 0:
            stats.dead = True
            for member in chain:
                member.dead = True
        # Visit-only backup: ancestors count the visit but keep their mean.
        for node_id in path:
            ancestor = self.stats[node_id]
            if ancestor.visits:
                ancestor.total += ancestor.total / ancestor.visits
            ancestor.visits += 1

    def _integrate_working(self, parent: Node, node: Node, path: list[int]) -> None:
        stats = self.stats[node.id]
        stats.visits, stats.total = 1, node.value
        if node.action == "fix":
            for member in self._fix_chain(node):  # a successful fix resolves the whole chain
                member_stats = self.stats[member.id]
                member_stats.resolved = True
                member_stats.total = node.value * member_stats.visits
        for node_id in path:
            ancestor = self.stats[node_id]
            ancestor.visits += 1
            ancestor.total += node.value

    @property
    def solved(self) -> bool:
        return self._solved

    def log_fields(self, node: Node) -> dict:
        """This search's statistics of `node` for the tree log: visits, backed_up_value, temp_value."""
        return self.stats[node.id].log_fields()

    # -- checkpoint -----------------------------------------------------------------

    def state_dict(self) -> dict:
        state = self.rng.getstate()
        return {
            "actions": list(self.actions),
            "paper_faithful": self.paper_faithful,
            "rng": [state[0], list(state[1]), state[2]],
            "values": self.values.state_dict(),
            "nodes": [dataclasses.asdict(n) for n in self.nodes],
            "stats": [dataclasses.asdict(self.stats[n.id]) for n in self.nodes],  # in node order
            "escape": self.escape,
            "solved": self._solved,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actions = tuple(state["actions"])
        self.paper_faithful = state["paper_faithful"]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.values.load_state_dict(state["values"])
        records = [split_node_record(n) for n in state["nodes"]]
        self.nodes = [node for node, _ in records]
        # Format 2 kept the statistics in the node records; format 3 beside them.
        stats = state.get("stats") or [extra for _, extra in records]
        names = {field.name for field in dataclasses.fields(NodeStats)}
        self.stats = {node.id: NodeStats(**{k: v for k, v in s.items() if k in names})
                      for node, s in zip(self.nodes, stats)}
        self.pending = {}
        self.escape = state.get("escape")
        self._solved = state["solved"]
