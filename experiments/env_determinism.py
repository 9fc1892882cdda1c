"""Which gymnax environments are a deterministic function of their observation?

For every registered gymnax id this script runs random-policy rollouts (with
gymnax's auto-resetting `step`, so every stored state is a real pre-step state)
and then runs three experiments on the visited states with `step_env`:

  1. keys: the same (state, action) stepped with 8 different keys. Any
     difference in (next obs, reward, done) means the step itself is random.
  2. hidden: one field of the EnvState is replaced by the value of the same
     field in another visited state. If the observation is unchanged but the
     step's (next obs, reward, done) changes, the dynamics depend on state
     that the observation does not show.
  3. collisions: among all visited transitions (fixed key), equal (obs, action)
     pairs with different (next obs, reward, done).

Usage: python experiments/env_determinism.py [ENV_ID ...]
Prints one line per environment and per experiment with the counts.
"""

from __future__ import annotations

import sys
import time

import gymnax
import jax
import jax.numpy as jnp
import numpy as np

ALL_IDS = [
    "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
    "Pendulum-v1", "Catch-bsuite",
    "Asterix-MinAtar", "Breakout-MinAtar", "Freeway-MinAtar", "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
    "FourRooms-misc", "MetaMaze-misc", "PointRobot-misc", "BernoulliBandit-misc",
    "GaussianBandit-misc", "Reacher-misc", "Swimmer-misc", "Pong-misc", "FrozenLake-misc",
    "DeepSea-bsuite", "MemoryChain-bsuite", "UmbrellaChain-bsuite",
    "DiscountingChain-bsuite", "MNISTBandit-bsuite", "SimpleBandit-bsuite",
]

N_ENVS = 32
N_STEPS = 200
N_PROBE = 1024


def rollout(env, params, key):
    """Visited (state, action) pairs of a random policy; states are pre-step."""
    space = env.action_space(params)

    def one(key):
        key, k0 = jax.random.split(key)
        _, state = env.reset(k0, params)

        def body(carry, key):
            state = carry
            ka, ks = jax.random.split(key)
            action = space.sample(ka)
            _, nstate, _, _, _, _ = env.step(ks, state, action, params)
            return nstate, (state, action)

        _, out = jax.lax.scan(body, state, jax.random.split(key, N_STEPS))
        return out

    states, actions = jax.vmap(one)(jax.random.split(key, N_ENVS))
    flat = lambda x: x.reshape((N_ENVS * N_STEPS,) + x.shape[2:])
    return jax.tree.map(flat, states), flat(actions)


def outcome(env, params, key, state, action):
    obs, _, reward, done, _ = env.step_env(key, state, action, params)
    return (jnp.ravel(obs).astype(jnp.float32), jnp.ravel(reward).astype(jnp.float32),
            jnp.ravel(done).astype(jnp.float32))


def differs(a, b):
    """Beyond the CWM tolerance |x - y| <= 1e-5 + 1e-5 |y| (done exactly).

    A tolerance, not `!=`: the same computation compiled in two places (vmapped
    or not) may round differently in the last bit.
    """
    far = lambda x, y: jnp.any(jnp.abs(x - y) > 1e-5 + 1e-5 * jnp.abs(y))
    return far(a[0], b[0]) | far(a[1], b[1]) | jnp.any(a[2] != b[2])


def check(env_id: str) -> None:
    t0 = time.time()
    try:
        env, params = gymnax.make(env_id)
    except Exception as e:  # MNISTBandit downloads MNIST
        print(f"{env_id:26s} make failed: {type(e).__name__}: {str(e)[:100]}")
        return
    key = jax.random.key(0)
    states, actions = rollout(env, params, key)
    n = actions.shape[0]
    idx = np.random.default_rng(0).choice(n, size=min(N_PROBE, n), replace=False)
    s = jax.tree.map(lambda x: x[idx], states)
    a = actions[idx]
    fixed = jax.random.key(123)

    # 1. key dependence
    def key_dep(state, action):
        keys = jax.random.split(jax.random.key(7), 8)
        outs = jax.vmap(lambda k: outcome(env, params, k, state, action))(keys)
        base = jax.tree.map(lambda x: x[0], outs)
        return jnp.any(jax.vmap(lambda o: differs(o, base))(outs))

    n_key = int(jnp.sum(jax.jit(jax.vmap(key_dep))(s, a)))

    # 2. hidden state: swap one leaf with another visited state's value
    leaves, treedef = jax.tree.flatten(s)
    names = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(s)[0]]
    perm = np.random.default_rng(1).permutation(len(idx))
    hidden = {}
    for li, name in enumerate(names):
        other = [leaf if j != li else leaf[perm] for j, leaf in enumerate(leaves)]
        s2 = jax.tree.unflatten(treedef, other)

        def probe(state, state2, action):
            o1 = jnp.ravel(env.observe(fixed, state, None, params)).astype(jnp.float32)
            o2 = jnp.ravel(env.observe(fixed, state2, None, params)).astype(jnp.float32)
            same_obs = jnp.all(o1 == o2)
            d = differs(outcome(env, params, fixed, state, action),
                        outcome(env, params, fixed, state2, action))
            return same_obs, same_obs & d

        same, bad = jax.jit(jax.vmap(probe))(s, s2, a)
        hidden[name] = (int(jnp.sum(same)), int(jnp.sum(bad)))

    # 3. collisions of (obs, action) among all visited transitions, fixed key
    obs_all = jax.jit(jax.vmap(lambda st: jnp.ravel(env.observe(fixed, st, None, params))))(states)
    outs = jax.jit(jax.vmap(lambda st, ac: outcome(env, params, fixed, st, ac)))(states, actions)
    table: dict[bytes, bytes] = {}
    n_coll = n_conflict = 0
    obs_np = np.asarray(obs_all, np.float32)
    act_np = np.asarray(actions).reshape(n, -1).astype(np.float32)
    out_np = np.concatenate([np.asarray(o).reshape(n, -1) for o in outs], axis=1)
    for i in range(n):
        k = obs_np[i].tobytes() + act_np[i].tobytes()
        v = out_np[i].tobytes()
        if k in table:
            n_coll += 1
            n_conflict += table[k] != v
        else:
            table[k] = v

    hid = ", ".join(f"{k}: {b}/{c}" for k, (c, b) in hidden.items() if c)
    print(f"{env_id:26s} obs={tuple(obs_all.shape[1:])} key-dependent={n_key}/{len(idx)} | "
          f"hidden (field: differs/same-obs) {hid or 'none with same obs'} | "
          f"collisions {n_conflict}/{n_coll} conflicting/repeated | {time.time() - t0:.0f}s",
          flush=True)


if __name__ == "__main__":
    for env_id in sys.argv[1:] or ALL_IDS:
        try:
            check(env_id)
        except Exception as e:
            print(f"{env_id:26s} ERROR {type(e).__name__}: {str(e)[:200]}", flush=True)
