"""The environment spec: everything the framework knows about one benchmark env."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from cwm_jax.errors import UsageError

__all__ = ["DESCRIPTION_LEVELS", "EnvSpec", "StepFn", "epsilon_greedy"]

# A transition function with the CWM signature: (state, action) -> (next_state, reward, done).
StepFn = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]

DESCRIPTION_LEVELS = ("full", "docs")


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """One benchmark environment.

    Observation-as-state: a CWM's state is the gymnax observation flattened to a
    float32 vector [obs_dim]. Actions are int32 scalars in [0, num_actions) for
    discrete envs, float32 vectors [action_dim] in [action_low, action_high] for
    continuous ones.

    Attributes:
      name: canonical short name, e.g. "CartPole".
      gymnax_id: id for `gymnax.make`, e.g. "CartPole-v1".
      description: prose for the LLM (layout, units, actions, reward, start,
        termination; no equations).
      obs_shape: shape of the gymnax observation (Catch: (10, 5)).
      num_actions: number of discrete actions, or None for continuous envs.
      action_dim: size of the continuous action vector, or None.
      action_low, action_high: continuous action bounds (per element).
      state_from_obs: rebuilds a gymnax EnvState from a flat observation; the
        oracle runs gymnax's own `step_env` on it.
      heuristic_policy: (key, obs) -> action, better than random; used to
        collect non-random trajectories.
      reference: module name of the hand-written reference CWM in
        `cwm_jax.reference`.
      aliases: extra accepted ids besides name, gymnax_id and "gymnax/<name>".
      to_gymnax_action: maps a contract action to what gymnax's `step_env`
        expects, when the two differ (None: pass it through).
      gymnax_params: (field, value) pairs that replace gymnax's default
        EnvParams; set by the "-unknown" variants, whose physical constants
        differ from the textbook ones. Everything that runs the real
        environment (data, oracle, planning, CWMEnv) goes through
        `make_gymnax`, so all of it sees these values.
      docs_description: the Gymnasium-documentation level of description
        (state, actions, reward, termination; no constants, no integrator
        details), for comparison with the paper; see `description_for`.
      stochastic: the dynamics draw chance outcomes: CWMs follow the chance
        contract and are scored by likelihood (docs/chance.md).
      make_env: () -> (env, params) for an environment that gymnax does not
        ship (a generated world, `cwm_jax.envs.novel`, or one of this
        project's); None: `gymnax.make(gymnax_id)`.
      reference_source: the reference CWM's text when it is generated rather
        than a module of `cwm_jax.reference` ("": read `reference`).
      data_version: identifies the dynamics behind cached transitions beyond
        `gymnax_params` (a generated world's generator version and digest);
        a cache file recorded under another one is collected again.
      source: where the environment comes from: "gymnax" (gymnax and this
        project's JAX environments), or "gymnasium" (stepped through
        gymnasium itself, `cwm_jax.envs.gymnasium_source`; no gymnax env, so
        `state_from_obs` is None and `heuristic_policy` may be), or "data"
        (a recorded dataset, `cwm_jax.data.datasets`: transitions only).
      planner_defaults: (config field, value) pairs over the planner registry's
        defaults for this environment (`cwm_jax.planning.planner_config`), e.g.
        what a Python-stepped MuJoCo oracle affords (`cwm_jax.envs.cwmb`).
      episode_steps: the length at which planning evaluations in a gymnasium
        environment stop an episode, below gymnasium's own time limit (None:
        gymnasium's).
      chance_oracle: () -> the true dynamics of a random environment as a
        chance model (afterstate, chance_log_probs, outcome, num_outcomes), the
        oracle of planning it (`cwm_jax.chance_planning`); None: none known.
      from_records: this process knows the environment only by its cached
        transitions (`cwm_jax.envs.recorded`: a dataset, or an environment
        registered in another process, seen from a sandbox worker): nothing
        can step it or record more; probe states come from the train split.
    """

    name: str
    gymnax_id: str
    description: str
    obs_shape: tuple[int, ...]
    state_from_obs: Callable[[jax.Array], Any] | None
    heuristic_policy: Callable[[jax.Array, jax.Array], jax.Array] | None
    reference: str
    num_actions: int | None = None
    action_dim: int | None = None
    action_low: float = 0.0
    action_high: float = 0.0
    aliases: tuple[str, ...] = ()
    to_gymnax_action: Callable[[jax.Array], jax.Array] | None = None
    gymnax_params: tuple[tuple[str, float], ...] = ()
    docs_description: str = ""
    stochastic: bool = False
    make_env: Callable[[], tuple[Any, Any]] | None = None
    reference_source: str = ""
    data_version: str = ""
    source: str = "gymnax"
    from_records: bool = False
    planner_defaults: tuple[tuple[str, Any], ...] = ()
    episode_steps: int | None = None
    chance_oracle: Callable[[], Any] | None = None

    @property
    def records_only(self) -> bool:
        """Nothing here can step it or record more: a dataset, or an env rebuilt from its records (`from_records`)."""
        return self.from_records or self.source == "data"

    @property
    def discrete(self) -> bool:
        return self.num_actions is not None

    @property
    def obs_dim(self) -> int:
        size = 1
        for d in self.obs_shape:
            size *= d
        return size

    @property
    def id(self) -> str:
        """The canonical id, the registry's key: "gymnax/CartPole", "gymnax/CartPole-unknown"."""
        return f"{self.source}/{self.name}"

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id that resolves to this spec (a variant does not answer to gymnax's id)."""
        if self.source != "gymnax":
            return (self.id,)
        if self.gymnax_params:
            return (self.id, self.name, *self.aliases)
        return (self.id, self.name, self.gymnax_id, f"gymnax/{self.gymnax_id}", *self.aliases)

    def description_for(self, level: str = "full") -> str:
        """The description for the LLM at a level of detail.

        Args:
          level: "full" (every constant and quirk, or for an "-unknown"
            variant which constants exist but not their values) or "docs"
            (the Gymnasium documentation level used by the paper: state,
            actions, reward, termination; no constants, no integrator).

        Raises:
          ValueError: an unknown level, or "docs" for an env that has none.
        """
        if level == "full":
            return self.description
        if level == "docs":
            if not self.docs_description:
                raise ValueError(f"{self.id} has no 'docs' description")
            return self.docs_description
        raise ValueError(f"unknown description level {level!r}; choose one of: {', '.join(DESCRIPTION_LEVELS)}")

    def state_struct(self) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct((self.obs_dim,), jnp.float32)

    def action_struct(self) -> jax.ShapeDtypeStruct:
        if self.discrete:
            return jax.ShapeDtypeStruct((), jnp.int32)
        return jax.ShapeDtypeStruct((self.action_dim,), jnp.float32)

    def action_signature(self) -> str:
        """The action part of the contract, in words (shown to the LLM)."""
        if self.discrete:
            return f"int32 scalar in {{0, ..., {self.num_actions - 1}}}"
        return (
            f"float32 array of shape [{self.action_dim}], each element in "
            f"[{self.action_low:g}, {self.action_high:g}]"
        )

    def make_gymnax(self):
        """(env, params) from gymnax: its default params with `gymnax_params` applied."""
        if self.records_only:
            raise UsageError(f"{self.id} is known here only by its recorded transitions: check, fit and synth "
                             "work on them; there is no environment to plan, act or train in")
        if self.source != "gymnax" and self.make_env is None:
            raise UsageError(f"{self.id} runs in {self.source}, not in JAX: check, fit and synth work on its "
                             "recorded transitions, plan acts in it on the host; training in it is not built yet")
        env, params = self.make_env() if self.make_env is not None else _make_gymnax(self.gymnax_id)
        if self.gymnax_params:
            params = params.replace(**dict(self.gymnax_params))
        return env, params

    def flatten_obs(self, obs: jax.Array) -> jax.Array:
        return jnp.reshape(obs, (self.obs_dim,)).astype(jnp.float32)

    def oracle_step(self, state: jax.Array, action: jax.Array):
        """The true dynamics through the CWM signature.

        Rebuilds the gymnax state from the observation and calls gymnax's own
        `step_env` (never `step`, which auto-resets). Deterministic: the key is
        fixed and, for the envs in the registry, unused by the dynamics.

        Args:
          state: float32 [obs_dim].
          action: int32 [] or float32 [action_dim].

        Returns:
          (next_state float32 [obs_dim], reward float32 [], done bool []).
        """
        env, params = self.make_gymnax()
        env_state = self.state_from_obs(state)
        if self.to_gymnax_action is not None:
            action = self.to_gymnax_action(action)
        obs, _, reward, done, _ = env.step_env(jax.random.key(0), env_state, action, params)
        return (
            self.flatten_obs(obs),
            jnp.asarray(reward, jnp.float32).reshape(()),
            jnp.asarray(done, jnp.bool_).reshape(()),
        )

    def random_action(self, key: jax.Array) -> jax.Array:
        if self.discrete:
            return jax.random.randint(key, (), 0, self.num_actions, dtype=jnp.int32)
        return jax.random.uniform(
            key, (self.action_dim,), jnp.float32, self.action_low, self.action_high
        )


@functools.cache
def _make_gymnax(gymnax_id: str):
    import gymnax

    # The result is cached, and the first call may come from inside a jit
    # trace (e.g. oracle_step): build the default params eagerly so the cache
    # never holds a tracer (Acrobot's params hold a jnp array).
    with jax.ensure_compile_time_eval():
        return gymnax.make(gymnax_id)


def epsilon_greedy(key: jax.Array, greedy: jax.Array, num_actions: int, epsilon: float) -> jax.Array:
    """`greedy` (int32 []), or with probability `epsilon` a uniformly random action.

    Keeps heuristic data-collection policies noisy, so recorded episodes cover
    more than one trajectory.
    """
    explore_key, action_key = jax.random.split(key)
    random_action = jax.random.randint(action_key, (), 0, num_actions, dtype=jnp.int32)
    return jnp.where(jax.random.uniform(explore_key) < epsilon, random_action, greedy.astype(jnp.int32))
