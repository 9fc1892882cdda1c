"""PPO in the PureJaxRL style, on any gymnax `Environment`.

`make_train(env, env_params, config)` returns one pure `train(key)`: vmapped
environments, `lax.scan` over updates, a flax actor-critic, optax. Jit it, or
`jax.jit(jax.vmap(train))` over seeds. The environment can be the real gymnax
env or a Code World Model wrapped as one (`cwm_jax.gymnax_env.CWMEnv`): then
the whole training run happens inside the model.

The trained network also serves MCTS: `make_value_fn` (critic, AlphaZero-style
leaf value instead of rollouts) and `make_prior_fn` (policy logits).

The network, its distributions and its saved format (`save` / `load`) are in
`planners.ppo_network`, re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from planners.base import PlanFn, PriorFn, ValueFn
from planners.ppo_network import ActorCritic, entropy, load, log_prob, network_for, sample, save

__all__ = [
    "ActorCritic",
    "PPOConfig",
    "TrainOutput",
    "Transition",
    "entropy",
    "gae",
    "load",
    "log_prob",
    "make_policy",
    "make_prior_fn",
    "make_train",
    "make_value_fn",
    "network_for",
    "sample",
    "save",
]


@chex.dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters (the defaults are PureJaxRL's CartPole ones)."""

    total_timesteps: int = 500_000
    num_envs: int = 4
    num_steps: int = 128  # rollout length per env per update
    update_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 2.5e-4
    anneal_lr: bool = True
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 1.0  # rewards are multiplied by this for learning
    hidden: tuple[int, ...] = (64, 64)
    num_evals: int = 10  # points on the learning curve

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)

    @property
    def updates_per_eval(self) -> int:
        return max(1, self.num_updates // self.num_evals)

    @property
    def steps_per_eval(self) -> int:
        """Environment (model) steps between two points of the learning curve."""
        return self.updates_per_eval * self.num_envs * self.num_steps

    @property
    def model_steps(self) -> int:
        """Environment (model) steps that `train` takes: num_evals stretches."""
        return self.num_evals * self.steps_per_eval


class Transition(NamedTuple):
    done: jax.Array  # bool [T, E], an episode ended (terminated or truncated)
    action: jax.Array  # [T, E] or [T, E, A]
    value: jax.Array  # [T, E]
    reward: jax.Array  # [T, E], scaled, plus the bootstrap at truncations
    log_prob: jax.Array  # [T, E]
    obs: jax.Array  # [T, E, obs_dim]


class Runner(NamedTuple):
    """The carry of the training loop."""

    params: Any
    opt_state: Any
    env_state: Any  # leaves [E, ...]
    obs: jax.Array  # [E, obs_dim]
    episode_return: jax.Array  # [E], undiscounted return so far of the running episodes
    finished_return: jax.Array  # [], summed returns of episodes ended in this stretch
    finished_count: jax.Array  # [], how many ended


class TrainOutput(NamedTuple):
    """What `train(key)` returns (add a leading [seeds] axis under vmap).

    Attributes:
      params: the final network parameters.
      model_return: float32 [num_evals], mean undiscounted return of the
        episodes that ended in the training env during each stretch of
        updates (NaN if none ended).
      eval_return: float32 [num_evals], `eval_fn(params, key)` after each
        stretch (NaN without eval_fn).
    """

    params: Any
    model_return: jax.Array
    eval_return: jax.Array


def gae(transitions: Transition, last_value, *, gamma: float, gae_lambda: float):
    """(advantages, targets), both [T, E]; episodes do not leak across `done`."""

    def step(carry, t: Transition):
        advantage, next_value = carry
        not_done = 1.0 - t.done
        delta = t.reward + gamma * next_value * not_done - t.value
        advantage = delta + gamma * gae_lambda * not_done * advantage
        return (advantage, t.value), advantage

    _, advantages = jax.lax.scan(
        step, (jnp.zeros_like(last_value), last_value), transitions, reverse=True
    )
    return advantages, advantages + transitions.value


def make_train(
    env,
    env_params,
    config: PPOConfig,
    *,
    eval_fn: Callable[[Any, jax.Array], jax.Array] | None = None,
) -> Callable[[jax.Array], TrainOutput]:
    """`train(key) -> TrainOutput`: PPO on `env`, pure and jittable.

    Uses the gymnax `env.step` (auto-reset). An episode cut by the time limit
    (truncated, not terminated) is bootstrapped: its last reward gets
    `gamma * V(final observation)` added, so the critic learns the
    infinite-horizon discounted value (what MCTS needs).

    Args:
      env, env_params: any gymnax Environment (the real one or a CWMEnv).
      config: hyperparameters.
      eval_fn: (params, key) -> float32 [], e.g. a real-env episode return;
        called after every `config.updates_per_eval` updates.
    """
    network, to_env_action = network_for(env, env_params, config.hidden)
    discrete = network.discrete
    batch_size = config.num_envs * config.num_steps
    if config.num_updates < 1 or batch_size % config.num_minibatches:
        raise ValueError("need total_timesteps >= num_envs * num_steps, divisible into num_minibatches")
    minibatch = batch_size // config.num_minibatches
    total_grad_steps = config.num_evals * config.updates_per_eval * config.update_epochs * config.num_minibatches

    def schedule(count):
        frac = 1.0 - count / total_grad_steps
        return config.learning_rate * (frac if config.anneal_lr else 1.0)

    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(schedule, eps=1e-5))
    flat = jax.vmap(lambda o: jnp.reshape(o, (-1,)).astype(jnp.float32))
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def loss_fn(params, batch: Transition, advantages, targets):
        policy, log_std, value = network.apply(params, batch.obs)
        ratio = jnp.exp(log_prob(policy, log_std, batch.action, discrete=discrete) - batch.log_prob)
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        clipped = jnp.clip(ratio, 1 - config.clip_eps, 1 + config.clip_eps)
        actor_loss = -jnp.minimum(ratio * advantages, clipped * advantages).mean()
        value_clipped = batch.value + jnp.clip(value - batch.value, -config.clip_eps, config.clip_eps)
        value_loss = 0.5 * jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2).mean()
        bonus = entropy(policy, log_std, discrete=discrete).mean()
        return actor_loss + config.vf_coef * value_loss - config.ent_coef * bonus

    def env_step(runner: Runner, key):
        act_key, step_key = jax.random.split(key)
        params = runner.params
        policy, log_std, value = network.apply(params, runner.obs)
        action = sample(act_key, policy, log_std, discrete=discrete)
        next_obs, env_state, reward, terminated, truncated, info = step(
            jax.random.split(step_key, config.num_envs), runner.env_state, jax.vmap(to_env_action)(action), env_params
        )
        reward = jnp.asarray(reward, jnp.float32)
        done = terminated | truncated
        _, _, final_value = network.apply(params, flat(info["final_observation"]))
        bootstrap = jnp.where(truncated & ~terminated, config.gamma * final_value, 0.0)
        episode_return = runner.episode_return + reward
        transition = Transition(
            done, action, value, reward * config.reward_scale + bootstrap,
            log_prob(policy, log_std, action, discrete=discrete), runner.obs,
        )
        runner = runner._replace(
            env_state=env_state,
            obs=flat(next_obs),
            episode_return=jnp.where(done, 0.0, episode_return),
            finished_return=runner.finished_return + jnp.sum(jnp.where(done, episode_return, 0.0)),
            finished_count=runner.finished_count + done.sum(),
        )
        return runner, transition

    def minibatch_step(train_state, batch):
        params, opt_state = train_state
        grads = jax.grad(loss_fn)(params, *batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    def update(runner: Runner, key) -> tuple[Runner, None]:
        rollout_key, shuffle_key = jax.random.split(key)
        runner, transitions = jax.lax.scan(env_step, runner, jax.random.split(rollout_key, config.num_steps))
        _, _, last_value = network.apply(runner.params, runner.obs)
        advantages, targets = gae(transitions, last_value, gamma=config.gamma, gae_lambda=config.gae_lambda)

        def epoch(train_state, key):
            order = jax.random.permutation(key, batch_size)
            data = (transitions, advantages, targets)
            data = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:])[order], data)
            data = jax.tree.map(lambda x: x.reshape((config.num_minibatches, minibatch) + x.shape[1:]), data)
            return jax.lax.scan(minibatch_step, train_state, data)[0], None

        train_state = (runner.params, runner.opt_state)
        (params, opt_state), _ = jax.lax.scan(epoch, train_state, jax.random.split(shuffle_key, config.update_epochs))
        return runner._replace(params=params, opt_state=opt_state), None

    def stretch(runner: Runner, key):
        """`updates_per_eval` updates, then one point of the learning curve."""
        zero = jnp.zeros((), jnp.float32)
        runner = runner._replace(finished_return=zero, finished_count=zero)
        update_key, eval_key = jax.random.split(key)
        runner, _ = jax.lax.scan(update, runner, jax.random.split(update_key, config.updates_per_eval))
        count = runner.finished_count
        model_return = jnp.where(count > 0, runner.finished_return / jnp.maximum(count, 1.0), jnp.nan)
        eval_return = jnp.float32(jnp.nan) if eval_fn is None else eval_fn(runner.params, eval_key)
        return runner, (model_return, jnp.asarray(eval_return, jnp.float32))

    def train(key: jax.Array) -> TrainOutput:
        init_key, reset_key, key = jax.random.split(key, 3)
        obs, env_state = reset(jax.random.split(reset_key, config.num_envs), env_params)
        obs = flat(obs)
        params = network.init(init_key, obs[0])
        zero = jnp.zeros((), jnp.float32)
        runner = Runner(
            params, optimizer.init(params), env_state, obs, jnp.zeros((config.num_envs,), jnp.float32), zero, zero
        )
        runner, (model_return, eval_return) = jax.lax.scan(stretch, runner, jax.random.split(key, config.num_evals))
        return TrainOutput(params=runner.params, model_return=model_return, eval_return=eval_return)

    return train


# --------------------------------------------------------------------------- using a trained network


def make_policy(network: ActorCritic, params, *, to_env_action: Callable | None = None) -> PlanFn:
    """The greedy policy as a planner: (key, state [obs_dim]) -> action.

    Argmax of the logits (discrete) or the mean (continuous), mapped by
    `to_env_action` if given (e.g. clipping to the action bounds).
    """

    def plan(key: jax.Array, state) -> jax.Array:
        del key
        policy, _, _ = network.apply(params, jnp.reshape(state, (-1,)).astype(jnp.float32))
        action = jnp.argmax(policy).astype(jnp.int32) if network.discrete else policy
        return action if to_env_action is None else to_env_action(action)

    return plan


def make_value_fn(network: ActorCritic, params, *, reward_scale: float = 1.0) -> ValueFn:
    """The critic as an MCTS leaf value, in unscaled reward units: (key, state) -> float32 []."""

    def value(key: jax.Array, state) -> jax.Array:
        del key
        _, _, v = network.apply(params, jnp.reshape(state, (-1,)).astype(jnp.float32))
        return v / reward_scale

    return value


def make_prior_fn(network: ActorCritic, params) -> PriorFn:
    """The policy logits as MCTS prior: state -> float32 [num_actions]."""
    if not network.discrete:
        raise ValueError("a prior over actions needs a discrete-action network")

    def prior(state) -> jax.Array:
        policy, _, _ = network.apply(params, jnp.reshape(state, (-1,)).astype(jnp.float32))
        return policy

    return prior
