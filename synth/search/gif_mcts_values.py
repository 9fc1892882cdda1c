"""GIF-MCTS's hyperparameters, its statistics of each node, and the value model of unexpanded actions.

The shared `synth.search.node.Node` record holds what every method knows of a
program; what only GIF-MCTS keeps of a node (its state, backed-up visits and
value, the fix chain) is a `NodeStats` here, which the search holds by node id.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = [
    "MAX_FIXES",
    "NEW_LINES_PER_GENERATE",
    "PRIORS",
    "PRIOR_COUNT",
    "UCT_C",
    "UCT_EPSILON",
    "ActionValueModel",
    "NodeStats",
    "buggy_value",
    "uct_score",
]

# GIF-MCTS hyperparameters (paper, Tables 4-5).
NEW_LINES_PER_GENERATE = 2  # L
UCT_C = 0.1
UCT_EPSILON = 1.0
MAX_FIXES = 3  # f
# Value estimate priors per action type, each counted as PRIOR_COUNT nodes.
# The paper's Table 4 gives generate 0.5 and improve 0.55; fix 0.5 is the code's.
PRIORS = {"generate": 0.5, "improve": 0.55, "fix": 0.5}
PRIOR_COUNT = 2


def uct_score(value: float, parent_visits: int, count: int) -> float:
    """UCT of a child or an unexpanded slot: value + C * sqrt(ln N / (n + epsilon)).

    N is the parent's visits (at least 1, so an unvisited parent adds no
    bonus); n the child's visits, or for a slot the count of same-type siblings.
    """
    return value + UCT_C * math.sqrt(math.log(max(parent_visits, 1)) / (count + UCT_EPSILON))


def buggy_value(fixes_left: int) -> float:
    """Temporary value of a buggy node: linspace(0, 0.99, f + 1)[fixes_left]."""
    return 0.99 * fixes_left / MAX_FIXES


@dataclasses.dataclass
class NodeStats:
    """What GIF-MCTS keeps of one node.

    prefix: the node's state, the partial program a generate child continues.
    visits / total: backed-up statistics (the mean total / visits is the node's value).
    fixes_left: fixes its buggy chain has left; temp_value: a buggy node's temporary value.
    dead: nothing left to expand below; resolved: a buggy node whose fix chain succeeded.
    """

    prefix: str = ""
    visits: int = 0
    total: float = 0.0
    fixes_left: int = MAX_FIXES
    temp_value: float | None = None
    dead: bool = False
    resolved: bool = False

    def log_fields(self) -> dict:
        """What the tree log and its picture show of these statistics."""
        return {
            "visits": self.visits,
            "backed_up_value": self.total / self.visits if self.visits else None,
            "temp_value": self.temp_value,
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
    v_L the mean of the parent's expanded type-t children's values, as the
    search passes them (if it has none, v = v_G). The weights start at 0.5 and
    are fitted online by SGD on the squared error of each estimate; the
    learning rate is 1 / (1 + PRIOR_COUNT + updates), as the authors' code
    (`ValuePredictor(c=counts_init)`: 1/3, 1/4, ... with c = 2), and it decays
    on every update, also those without siblings, which move no weight.
    """

    def __init__(self):
        self.stats = {t: _TypeStats(total=p * PRIOR_COUNT, count=PRIOR_COUNT) for t, p in PRIORS.items()}

    def global_value(self, action: str) -> float:
        s = self.stats[action]
        return s.total / s.count

    def estimate(self, action: str, local_values: list[float]) -> float:
        s = self.stats[action]
        v_global = self.global_value(action)
        if not local_values:
            return v_global
        v_local = sum(local_values) / len(local_values)
        value = (s.w_global * v_global + s.w_local * v_local) / (s.w_global + s.w_local)
        return min(max(value, 0.0), 1.0)

    def learning_rate(self, action: str) -> float:
        return 1.0 / (1 + PRIOR_COUNT + self.stats[action].updates)

    def update(self, action: str, local_values: list[float], observed: float) -> None:
        """Learns from one expansion: `local_values` are the siblings' values before it."""
        s = self.stats[action]
        if local_values:
            v_global = self.global_value(action)
            v_local = sum(local_values) / len(local_values)
            weight = s.w_global + s.w_local
            predicted = (s.w_global * v_global + s.w_local * v_local) / weight
            error = predicted - observed
            rate = self.learning_rate(action)
            # d(error^2)/dw for a normalised weighted mean; weights kept positive.
            s.w_global = max(s.w_global - rate * 2 * error * (v_global - predicted) / weight, 1e-3)
            s.w_local = max(s.w_local - rate * 2 * error * (v_local - predicted) / weight, 1e-3)
        s.updates += 1
        s.total += observed
        s.count += 1

    def state_dict(self) -> dict:
        return {t: dataclasses.asdict(s) for t, s in self.stats.items()}

    def load_state_dict(self, state: dict) -> None:
        self.stats = {t: _TypeStats(**s) for t, s in state.items()}
