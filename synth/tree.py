"""Programs found by a search, and the value model of GIF-MCTS's unexpanded actions."""

from __future__ import annotations

import dataclasses

# GIF-MCTS hyperparameters (paper, Tables 4-5).
NEW_LINES_PER_GENERATE = 2  # L
UCT_C = 0.1
UCT_EPSILON = 1.0
MAX_FIXES = 3  # f
# Value estimate priors per action type, each counted as PRIOR_COUNT nodes.
# The paper's Table 4 gives generate 0.5 and improve 0.55; fix 0.5 is the code's.
PRIORS = {"generate": 0.5, "improve": 0.55, "fix": 0.5}
PRIOR_COUNT = 2


def buggy_value(fixes_left: int) -> float:
    """Temporary value of a buggy node: linspace(0, 0.99, f + 1)[fixes_left]."""
    return 0.99 * fixes_left / MAX_FIXES


@dataclasses.dataclass
class Node:
    """One program of the search (the root holds no program).

    Common to all methods: id, parent, action ("root", "generate", "improve",
    "fix"), program (the full completion, what is scored), value (accuracy on
    the train split, 0 if buggy), buggy, error (the rejection message),
    counterexample (first failing train transition, formatted), prompt_hash,
    tokens, seconds.

    GIF-MCTS: prefix (the node's state: the partial program a generate child
    continues), visits/total (backed-up statistics), fixes_left, dead (nothing
    left to expand below), resolved (a buggy node whose fix chain succeeded).
    WorldCoder: alpha/beta of its Beta posterior.
    """

    id: int
    parent: int | None
    action: str
    program: str = ""
    value: float = 0.0
    buggy: bool = False
    error: str | None = None
    counterexample: str = ""
    prompt_hash: str = ""
    tokens: int = 0
    seconds: float = 0.0
    prefix: str = ""
    children: list[int] = dataclasses.field(default_factory=list)
    visits: int = 0
    total: float = 0.0
    fixes_left: int = MAX_FIXES
    temp_value: float | None = None
    dead: bool = False
    resolved: bool = False
    alpha: float = 1.0
    beta: float = 1.0

    def log_record(self) -> dict:
        """What the tree log keeps of a node."""
        return {
            "id": self.id,
            "parent": self.parent,
            "action": self.action,
            "prompt_hash": self.prompt_hash,
            "program": self.program,
            "value": self.value,
            "buggy": self.buggy,
            "error": self.error,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 4),
        }


@dataclasses.dataclass
class _TypeStats:
    total: float
    count: float
    w_global: float = 0.5
    w_local: float = 0.5
    updates: int = 0


class ActionValueModel:
    """Value estimates for unexpanded generate / improve / fix actions (GIF-MCTS).

    For action type t at a parent: v = (w_G * v_G + w_L * v_L) / (w_G + w_L),
    clipped to [0, 1], where v_G is the running mean of every expansion of
    type t in the tree (seeded with the prior as PRIOR_COUNT pseudo-nodes) and
    v_L the mean of the parent's expanded type-t children (if it has none,
    v = v_G). The weights start at 0.5 and are fitted online by SGD on the
    squared error of each estimate, with learning rate 1 / (1 + updates).
    """

    def __init__(self):
        self.stats = {t: _TypeStats(total=p * PRIOR_COUNT, count=PRIOR_COUNT) for t, p in PRIORS.items()}

    def estimate(self, action: str, local_values: list[float]) -> float:
        s = self.stats[action]
        v_global = s.total / s.count
        if not local_values:
            return v_global
        v_local = sum(local_values) / len(local_values)
        value = (s.w_global * v_global + s.w_local * v_local) / (s.w_global + s.w_local)
        return min(max(value, 0.0), 1.0)

    def update(self, action: str, local_values: list[float], observed: float) -> None:
        """Learns from one expansion: `local_values` are the siblings before it."""
        s = self.stats[action]
        if local_values:
            v_global = s.total / s.count
            v_local = sum(local_values) / len(local_values)
            weight = s.w_global + s.w_local
            predicted = (s.w_global * v_global + s.w_local * v_local) / weight
            error = predicted - observed
            rate = 1.0 / (1 + s.updates)
            # d(error^2)/dw for a normalised weighted mean.
            s.w_global = max(s.w_global - rate * 2 * error * (v_global - predicted) / weight, 1e-3)
            s.w_local = max(s.w_local - rate * 2 * error * (v_local - predicted) / weight, 1e-3)
            s.updates += 1
        s.total += observed
        s.count += 1

    def state_dict(self) -> dict:
        return {t: dataclasses.asdict(s) for t, s in self.stats.items()}

    def load_state_dict(self, state: dict) -> None:
        self.stats = {t: _TypeStats(**s) for t, s in state.items()}
