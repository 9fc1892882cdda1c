"""Programs found by a search, and the value model of GIF-MCTS's unexpanded actions."""

from __future__ import annotations

import ast
import dataclasses
import difflib
import re

# GIF-MCTS hyperparameters (paper, Tables 4-5).
NEW_LINES_PER_GENERATE = 2  # L
UCT_C = 0.1
UCT_EPSILON = 1.0
MAX_FIXES = 3  # f
# Value estimate priors per action type, each counted as PRIOR_COUNT nodes.
# The paper's Table 4 gives generate 0.5 and improve 0.55; fix 0.5 is the code's.
PRIORS = {"generate": 0.5, "improve": 0.55, "fix": 0.5}
PRIOR_COUNT = 2
# Search values a run can use (`--value`): the key in an accuracy summary.
VALUE_METRICS = {"paper": "weighted_accuracy", "strict": "strict_accuracy"}


def buggy_value(fixes_left: int) -> float:
    """Temporary value of a buggy node: linspace(0, 0.99, f + 1)[fixes_left]."""
    return 0.99 * fixes_left / MAX_FIXES


@dataclasses.dataclass
class Node:
    """One program of the search (the root holds no program).

    Common to all methods: id, parent, action ("root", "generate", "improve",
    "fix", or "fit": constants fitted to the data, no LLM call), program (the
    full completion's code, what is scored), value (the search value on the
    train split, 0 if buggy), metrics ({"paper", "strict"} train values),
    buggy, error (the rejection message), counterexample (first failing train
    transition, formatted), fingerprint (a digest of the train predictions'
    summary, to recognise a repeat), repeat_of (the parent or sibling this
    program repeats, if any), prompt_hash, tokens, seconds; and for a person
    reading the record: completion (the raw answer), explanation (the model's
    text before its code), feedback (the counterexample or error its prompt
    showed), note (e.g. "the answer repeats the program in the prompt").

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
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    buggy: bool = False
    error: str | None = None
    counterexample: str = ""
    fingerprint: str = ""
    repeat_of: int | None = None
    prompt_hash: str = ""
    tokens: int = 0
    seconds: float = 0.0
    completion: str = ""
    explanation: str = ""
    feedback: str = ""
    note: str = ""
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

    def log_record(self, parent_program: str = "") -> dict:
        """What the tree log keeps of a node; `diff` is against `parent_program`."""
        diff = program_diff(parent_program, self.program) if self.program else ""
        return {
            "id": self.id,
            "parent": self.parent,
            "action": self.action,
            "prompt_hash": self.prompt_hash,
            "program": self.program,
            "value": self.value,
            "metrics": self.metrics,
            "buggy": self.buggy,
            "error": self.error,
            "visits": self.visits,
            "backed_up_value": self.total / self.visits if self.visits else None,
            "temp_value": self.temp_value,
            "repeat_of": self.repeat_of,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 4),
            "feedback": self.feedback,
            "explanation": self.explanation,
            "note": self.note,
            "diff": diff,
            "completion": self.completion,
        }


def program_diff(before: str, after: str) -> str:
    """A unified diff from `before` to `after` ('' if they are equal)."""
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile="parent", tofile="node"))


def normalized_program(source: str) -> str:
    """`source` without comments, docstrings and layout: two programs that differ only there are equal."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return re.sub(r"\s+", " ", source).strip()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


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
