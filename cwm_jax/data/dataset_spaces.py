"""The spaces of a dataset: the sidecar's JSON form, and what the CWM contract makes of them.

A SPACE is {"type": "Box", "shape": [...], "low": ..., "high": ...} or
{"type": "Discrete", "n": n, "start": s} (docs/datasets.md). Observations
become float32 [obs_dim] (a Box raveled, a Discrete as its value). Actions:
a Discrete(n, start) action a is the contract's int32 a - start in
{0, ..., n - 1}; a 1-D Box with one finite bound for every element is the
contract's float32 [action_dim].
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from cwm_jax.errors import UsageError

__all__ = ["ActionContract", "action_contract", "flatten_batch", "observation_size", "space_json"]

_TYPES = ("Box", "Discrete")


def space_json(space: Any) -> dict[str, Any]:
    """A gymnasium Box or Discrete space (or the JSON dict itself) as the sidecar's dict."""
    if isinstance(space, dict):
        return dict(space)
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        low, high = np.unique(space.low), np.unique(space.high)
        return {"type": "Box", "shape": list(space.shape),
                "low": float(low[0]) if len(low) == 1 else space.low.tolist(),
                "high": float(high[0]) if len(high) == 1 else space.high.tolist()}
    raise UsageError(f"the space {space} has no sidecar form: use Box or Discrete (flatten Tuple/Dict first)")


def _kind(space: Any, role: str, where: str) -> str:
    if not isinstance(space, dict) or space.get("type") not in _TYPES:
        raise UsageError(f"{where}: the {role} space must be an object with \"type\": \"Box\" or \"Discrete\", "
                         f"got {space!r}")
    return space["type"]


def _positive_int(space: dict, key: str, role: str, where: str) -> int:
    value = space.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"{where}: the {role} space's {key!r} must be a positive integer, got {value!r}")
    return value


def _shape(space: dict, role: str, where: str) -> tuple[int, ...]:
    shape = space.get("shape")
    if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise UsageError(f"{where}: the {role} space's \"shape\" must be a list of positive integers, got {shape!r}")
    return tuple(shape)


def observation_size(space: Any, where: str) -> int:
    """The length of the flat float32 state for an observation SPACE."""
    if _kind(space, "observation", where) == "Discrete":
        _positive_int(space, "n", "observation", where)
        return 1
    return int(np.prod(_shape(space, "observation", where)))


@dataclasses.dataclass(frozen=True)
class ActionContract:
    """How recorded actions become contract actions: Discrete(n, start) or a 1-D Box [low, high]."""

    num_actions: int | None
    start: int
    action_dim: int | None
    low: float
    high: float

    def spec_fields(self) -> dict[str, Any]:
        """The action fields of an `EnvSpec`."""
        if self.num_actions is not None:
            return {"num_actions": self.num_actions}
        return {"action_dim": self.action_dim, "action_low": self.low, "action_high": self.high}

    def check_actions(self, actions: np.ndarray, where: str) -> None:
        """Raises UsageError naming the first recorded action the space does not hold."""
        n = len(actions)
        if self.num_actions is not None:
            flat = actions.reshape(n, -1)
            if flat.shape[1] != 1 or actions.dtype.kind not in "iu" and not np.array_equal(flat, np.round(flat)):
                raise UsageError(f"{where}: actions of a Discrete space must be integers [N], got shape "
                                 f"{actions.shape} dtype {actions.dtype}")
            bad = np.flatnonzero((flat[:, 0] < self.start) | (flat[:, 0] >= self.start + self.num_actions))
            if len(bad):
                raise UsageError(f"{where}: action {flat[bad[0], 0]} at row {int(bad[0])} is outside Discrete("
                                 f"{self.num_actions}, start={self.start})")
            return
        flat = actions.reshape(n, -1)
        if flat.shape[1] != self.action_dim:
            raise UsageError(f"{where}: actions rows have {flat.shape[1]} values, the action space has "
                             f"{self.action_dim}")
        bad = np.flatnonzero(((flat < self.low) | (flat > self.high)).any(axis=1))
        if len(bad):
            raise UsageError(f"{where}: action {flat[bad[0]].tolist()} at row {int(bad[0])} is outside "
                             f"[{self.low:g}, {self.high:g}]")

    def to_contract(self, actions: np.ndarray) -> np.ndarray:
        """int32 [N] (a - start) or float32 [N, action_dim]."""
        n = len(actions)
        if self.num_actions is not None:
            return (actions.reshape(n) - self.start).astype(np.int32)
        return actions.reshape(n, self.action_dim).astype(np.float32)


def action_contract(space: Any, where: str) -> ActionContract:
    """The contract of an action SPACE; UsageError for one the contract cannot hold."""
    if _kind(space, "action", where) == "Discrete":
        start = space.get("start", 0)
        if not isinstance(start, int) or isinstance(start, bool):
            raise UsageError(f"{where}: the action space's \"start\" must be an integer, got {start!r}")
        return ActionContract(_positive_int(space, "n", "action", where), start, None, 0.0, 0.0)
    shape = _shape(space, "action", where)
    if len(shape) != 1:
        raise UsageError(f"{where}: a Box action space must be 1-D, got shape {list(shape)}")
    bounds = []
    for key in ("low", "high"):
        values = np.unique(np.asarray(space.get(key, np.nan), np.float64))
        if len(values) != 1 or not np.isfinite(values[0]):
            raise UsageError(f"{where}: the action space's {key!r} must be one finite number for every element "
                             f"(the contract holds one [low, high]), got {space.get(key)!r}")
        bounds.append(float(values[0]))
    if bounds[0] >= bounds[1]:
        raise UsageError(f"{where}: the action space's low {bounds[0]:g} is not below its high {bounds[1]:g}")
    return ActionContract(None, 0, shape[0], bounds[0], bounds[1])


def flatten_batch(space: Any, observations: Any) -> np.ndarray:
    """float32 [T, obs_dim]: a batch of gymnasium observations (Box, Discrete, Tuple/Dict of those) flattened."""
    from gymnasium import spaces

    if isinstance(space, spaces.Tuple):
        return np.concatenate([flatten_batch(s, o) for s, o in zip(space.spaces, observations)], axis=1)
    if isinstance(space, spaces.Dict):
        return np.concatenate([flatten_batch(s, observations[k]) for k, s in space.spaces.items()], axis=1)
    if not isinstance(space, (spaces.Box, spaces.Discrete)):
        raise UsageError(f"the observation space {space} cannot be a CWM state: use Box, Discrete, Tuple or Dict")
    array = np.asarray(observations, np.float32)
    return array.reshape(len(array), -1)
