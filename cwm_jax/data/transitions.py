"""Recorded transitions: collected with vmapped gymnax rollouts, cached as .npz.

Each environment has two splits made from disjoint seeds:
- `train`: what a search may see and use for feedback;
- `test`: held out, what results report.

A split mixes uniformly random episodes with episodes of the environment's
heuristic policy (better than random, with some noise), so it covers both the
start-state region and the states a competent agent reaches. Rollouts use
gymnax's own `step_env` (no auto-reset) and stop at the first termination;
the time limit is not part of a CWM, so it is not recorded as `done`.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cwm_jax import envs
from cwm_jax.data.cache import FORMAT_VERSION, cache_dir, read_split_file, split_file, write_split_file
from cwm_jax.envs import EnvSpec
from cwm_jax.envs.recorded import SPEC_KEY, spec_fields
from cwm_jax.errors import DeterminismWarning

__all__ = [
    "FORMAT_VERSION",
    "HEURISTIC_EPISODES",
    "MAX_EPISODE_STEPS",
    "RANDOM_EPISODES",
    "SPLITS",
    "SPLIT_SEEDS",
    "DataError",
    "Transitions",
    "cache_dir",
    "cache_path",
    "check_splits",
    "collect",
    "determinism_finding",
    "load_split",
    "load_split_with_metadata",
]

SPLITS = ("train", "test")
SPLIT_SEEDS = {"train": 0, "test": 1}  # disjoint PRNG streams
RANDOM_EPISODES = 10
HEURISTIC_EPISODES = 10
MAX_EPISODE_STEPS = 200


class Transitions(NamedTuple):
    """N recorded transitions (numpy arrays).

    Attributes:
      state: float32 [N, obs_dim].
      action: int32 [N] (discrete) or float32 [N, action_dim].
      next_state: float32 [N, obs_dim].
      reward: float32 [N].
      done: bool [N], termination only.
      episode: int32 [N], index of the episode within its split.
    """

    state: np.ndarray
    action: np.ndarray
    next_state: np.ndarray
    reward: np.ndarray
    done: np.ndarray
    episode: np.ndarray

    def __len__(self) -> int:  # NamedTuple's len would count fields
        return int(self.reward.shape[0])

    def take(self, index) -> Transitions:
        """The transitions at `index` (an int array, slice or boolean mask)."""
        return Transitions(*(np.asarray(field)[index] for field in self))


class DataError(RuntimeError):
    """A split cannot be read or made."""


def _gymnax_version() -> str:
    return importlib.metadata.version("gymnax")


def _metadata(spec: EnvSpec, split: str) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "env": spec.id,
        "gymnax_id": spec.gymnax_id,
        "gymnax_params": dict(spec.gymnax_params),
        "data_version": spec.data_version,
        "gymnax_version": _gymnax_version(),
        "jax_version": jax.__version__,
        "split": split,
        "seed": SPLIT_SEEDS[split],
        "policy": (
            f"{RANDOM_EPISODES} episodes of uniform random actions + {HEURISTIC_EPISODES} episodes "
            f"of the environment's heuristic policy ({_policy_name(spec)})"
        ),
        "max_episode_steps": MAX_EPISODE_STEPS,
        SPEC_KEY: spec_fields(spec),
    }


def _policy_name(spec: EnvSpec) -> str:
    if spec.make_env is not None:  # a generated world: its generator's heuristic
        return f"{spec.id}'s generator, heuristic"
    if spec.heuristic_policy is None:
        return "none known for this environment: uniform random actions again"
    return f"cwm_jax.envs.{spec.reference}.heuristic_policy"


def _rollout(spec: EnvSpec, key: jax.Array, heuristic: jax.Array):
    """One episode of at most MAX_EPISODE_STEPS steps, stopped at termination.

    The project's one scan-based episode loop (`planners.episode.rollout`,
    gymnax's own `step_env`, no auto-reset). Returns per-step arrays [T, ...]
    (state, action, next_state, reward, done) and a mask [T] of the recorded steps.
    """
    from planners.episode import rollout  # lazily: `import cwm_jax` does not load the planners

    env, params = spec.make_gymnax()
    action_dtype = spec.action_struct().dtype

    def policy(key, state):
        if spec.heuristic_policy is None:  # none known: random episodes only
            return spec.random_action(key)
        return jax.lax.cond(
            heuristic, lambda k: spec.heuristic_policy(k, state).astype(action_dtype), spec.random_action, key
        )

    return tuple(rollout(env, params, policy, key, num_steps=MAX_EPISODE_STEPS, obs_fn=spec.flatten_obs,
                         action_fn=spec.to_gymnax_action))


def collect(env_id: str | EnvSpec, split: str) -> tuple[Transitions, dict]:
    """Collects one split with a jitted, vmapped rollout (no caching)."""
    spec = envs.env_spec(env_id)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if spec.records_only:
        raise DataError(f"the {split} split of {spec.id} is not in the cache ({cache_dir()}) and cannot be recorded "
                        "here: load its dataset again (--data PATH, or cwm_jax.register in this process)")
    n = RANDOM_EPISODES + HEURISTIC_EPISODES
    if spec.source == "gymnasium":
        return _collect_gymnasium(spec, split, n)
    keys = jax.random.split(jax.random.key(SPLIT_SEEDS[split]), n)
    heuristic = jnp.arange(n) >= RANDOM_EPISODES
    records = jax.jit(jax.vmap(lambda k, h: _rollout(spec, k, h)))(keys, heuristic)
    state, action, next_state, reward, done, valid = (np.asarray(r) for r in records)
    episode = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None], valid.shape)
    mask = valid.reshape(-1)

    def flat(x):
        return x.reshape(-1, *x.shape[2:])[mask]

    data = Transitions(
        state=flat(state).astype(np.float32),
        action=flat(action),
        next_state=flat(next_state).astype(np.float32),
        reward=flat(reward).astype(np.float32),
        done=flat(done).astype(bool),
        episode=flat(episode),
    )
    return _finish(spec, split, data, n)


def _finish(spec: EnvSpec, split: str, data: Transitions, n_episodes: int) -> tuple[Transitions, dict]:
    """The metadata of a recorded split, and the determinism test's collision check on it (a warning if it fails)."""
    meta = _metadata(spec, split)
    meta["n_transitions"] = len(data)
    meta["n_episodes"] = n_episodes
    meta["n_terminations"] = int(data.done.sum())
    meta["determinism"] = determinism_finding(spec, data._asdict(), f"{spec.id}, {split} split", stacklevel=4)
    return data, meta


def determinism_finding(spec: EnvSpec, rows: dict[str, np.ndarray], where: str, *, stacklevel: int = 3) -> str:
    """The determinism test's collision check on recorded transitions, as the split's metadata says it.

    Warns (DeterminismWarning, naming `where`) when repeated (observation,
    action) pairs disagree; a random environment (`EnvSpec.stochastic`) is
    not checked: chance is declared, and CWMs are scored by likelihood.
    """
    from cwm_jax.envs.gymnasium_source import collisions

    if spec.stochastic:
        return "not checked: the environment is declared random (EnvSpec.stochastic)"
    disagreement = collisions(rows)
    if disagreement:
        warnings.warn(f"{where}: {disagreement}", DeterminismWarning, stacklevel=stacklevel)
    return disagreement or "no repeated (observation, action) pair disagreed"


def _collect_gymnasium(spec: EnvSpec, split: str, n: int) -> tuple[Transitions, dict]:
    """One split stepped through gymnasium itself (`cwm_jax.envs.gymnasium_source`), seeds disjoint per split."""
    from cwm_jax.data import cwmb_recording
    from cwm_jax.envs import cwmb
    from cwm_jax.envs.gymnasium_source import heuristic_or_random, record_episodes

    paper_way = cwmb.entry(spec.name) is not None  # one of the paper's 18: recorded its way
    n = cwmb_recording.EPISODES if paper_way else n
    seeds = [SPLIT_SEEDS[split] * 100_000 + i for i in range(n)]
    if paper_way:
        data, meta = _finish(spec, split, Transitions(**cwmb_recording.record_cwmb(spec, seeds)), n)
        meta.update(policy=cwmb_recording.policy_name(spec), max_episode_steps=cwmb_recording.max_steps(spec))
        return data, meta
    heuristic = [i >= RANDOM_EPISODES for i in range(n)]
    rows = record_episodes(spec, seeds, heuristic_or_random(spec, seeds, heuristic), max_steps=MAX_EPISODE_STEPS)
    return _finish(spec, split, Transitions(**rows), n)


def cache_path(spec: EnvSpec, split: str) -> Path:
    """Where the split of `spec` is cached (`cache_dir()`)."""
    return split_file(spec.source, spec.name, split)


def load_split(env_id: str | EnvSpec, split: str = "train", *, refresh: bool = False) -> Transitions:
    """The transitions of one split, collected on first use and cached.

    Args:
      env_id: environment id or spec.
      split: "train" (search feedback) or "test" (held out, for reporting).
      refresh: collect again even if a cache file exists.
    """
    return load_split_with_metadata(env_id, split, refresh=refresh)[0]


def load_split_with_metadata(
    env_id: str | EnvSpec, split: str = "train", *, refresh: bool = False
) -> tuple[Transitions, dict]:
    """`load_split` plus the metadata stored with it."""
    spec = envs.env_spec(env_id)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    path = cache_path(spec, split)
    if path.exists() and not refresh:
        try:
            arrays, meta = read_split_file(path, Transitions._fields)
            data = Transitions(**arrays)
            if ((spec.records_only or meta.get("gymnax_version") == _gymnax_version())  # records: no gymnax to go stale
                    and meta.get("format_version") == FORMAT_VERSION
                    and meta.get("gymnax_params", {}) == dict(spec.gymnax_params)
                    and meta.get("data_version", "") == spec.data_version):
                return data, meta
        except (OSError, ValueError, KeyError):
            pass  # a corrupt or foreign file: collect again and overwrite it
    data, meta = collect(spec, split)
    try:
        write_split_file(path, data._asdict(), meta)
    except OSError as exc:
        raise DataError(f"cannot write the transition cache {path}: {exc}; set CWM_JAX_CACHE") from None
    return data, meta


def check_splits(splits: Sequence[str]) -> tuple[str, ...]:
    """`splits` as a tuple of known split names; ValueError for an empty list or an unknown name."""
    if isinstance(splits, str):
        splits = (splits,)
    splits = tuple(splits)
    if not splits:
        raise ValueError("splits must name at least one split")
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return splits
