"""Which gymnax environments are a deterministic function of their observation?

For every registered gymnax id this script runs random-policy rollouts (with
gymnax's auto-resetting `step`, so every stored state is a real pre-step state)
and then runs three experiments on the visited states with `step_env`:

  1. keys: the same (state, action) stepped with 16 different keys. Any
     difference in (next obs, reward, done) means the step itself is random.
  2. hidden: one field of the EnvState is replaced by the value of the same
     field in another visited state. If the observation is unchanged but the
     step's (next obs, reward, done) changes, the dynamics depend on state
     that the observation does not show.
  3. collisions: among all visited transitions (fixed key), equal (obs, action)
     pairs with different (next obs, reward, done).

Usage: python experiments/env_determinism.py [ENV_ID ...]
       python experiments/env_determinism.py --deep ENV_ID ...   (experiment 3 at scale)
Prints one line per environment and per experiment with the counts.
"""

from __future__ import annotations

import argparse
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


def make(env_id: str):
    """gymnax's (env, params); an id gymnax does not know (a generated world) through the registry."""
    if env_id.lower().removeprefix("gymnax/").startswith("novel-"):
        from cwm_jax import envs

        return envs.env_spec(env_id).make_gymnax()
    return gymnax.make(env_id)


def check(env_id: str) -> None:
    t0 = time.time()
    try:
        env, params = make(env_id)
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
    def key_dep(i, state, action):
        # Different keys for every probe: a fixed set of 8 keys can happen to
        # give the same Bernoulli draws everywhere (it did, for p = 0.1 / 0.9).
        keys = jax.random.split(jax.random.fold_in(jax.random.key(7), i), 16)
        outs = jax.vmap(lambda k: outcome(env, params, k, state, action))(keys)
        base = jax.tree.map(lambda x: x[0], outs)
        return jnp.any(jax.vmap(lambda o: differs(o, base))(outs))

    n_key = int(jnp.sum(jax.jit(jax.vmap(key_dep))(jnp.arange(len(idx)), s, a)))

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




def breakout_policy(key, state):
    """Move the paddle (actions n, l, r) to where the ball will reach row 8; 3% random."""
    dx0 = jnp.where((state.ball_dir == 1) | (state.ball_dir == 2), 1, -1)
    down = state.ball_dir >= 2

    def fly(i, c):
        x, dx = c
        nx = x + dx
        out = (nx < 0) | (nx > 9)
        return jnp.where(out, x, nx), jnp.where(out, -dx, dx)

    n = jnp.where(down, 8 - state.ball_y, 0)
    x, _ = jax.lax.fori_loop(0, n, fly, (state.ball_x, dx0))
    a = jnp.where(x < state.pos, 1, jnp.where(x > state.pos, 2, 0))
    k1, k2 = jax.random.split(key)
    return jnp.where(jax.random.uniform(k1) < 0.03, jax.random.randint(k2, (), 0, 3), a)


def pong_policy(key, state):
    """Move the left paddle towards the ball row (1 up, 2 down), 20% random."""
    d = state.ball_position[0] - state.paddle_centers[0]
    a = jnp.where(d < 0, 1, jnp.where(d > 0, 2, 0))
    k1, k2 = jax.random.split(key)
    return jnp.where(jax.random.uniform(k1) < 0.2, jax.random.randint(k2, (), 0, 3), a)


DEEP_POLICIES = {"Breakout-MinAtar": breakout_policy, "Pong-misc": pong_policy}


def deep_collisions(env_id: str, n_envs: int = 256, n_steps: int = 2000, seed: int = 0,
                    max_pairs: int = 50_000) -> None:
    """Experiment 3 at scale, for discrete-action envs.

    Hashes the observation and the full state of every visited state on the
    device (random projections), keeps one state per distinct full state,
    groups equal observation hashes, checks the observations are really
    equal, and steps both states of each pair with EVERY action: any
    difference is a reachable counterexample (two reachable states, same
    observation, same action, different outcome). States come from a
    ball-following policy with 20% random actions where one is defined (a
    random policy dies within a few steps in Breakout), else random.
    """
    env, params = make(env_id)
    space = env.action_space(params)
    policy = DEEP_POLICIES.get(env_id, lambda key, state: space.sample(key))
    fixed = jax.random.key(123)
    _, state0 = env.reset(fixed, params)
    obs_dim = int(np.prod(env.observe(fixed, state0, None, params).shape))
    state_dim = sum(int(np.prod(jnp.shape(x))) for x in jax.tree.leaves(state0))
    proj = jax.random.normal(jax.random.key(99), (2, obs_dim))
    sproj = jax.random.normal(jax.random.key(98), (2, state_dim))

    def state_vec(state):
        return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in jax.tree.leaves(state)])

    def one(key):
        key, k0 = jax.random.split(key)
        _, state = env.reset(k0, params)

        def body(state, key):
            ka, ks = jax.random.split(key)
            action = policy(ka, state)
            _, nstate, _, _, _, _ = env.step(ks, state, action, params)
            o = jnp.ravel(env.observe(fixed, state, None, params)).astype(jnp.float32)
            return nstate, (state, proj @ o, sproj @ state_vec(state))

        return jax.lax.scan(body, state, jax.random.split(key, n_steps))[1]

    states, hashes, shashes = jax.jit(jax.vmap(one))(
        jax.random.split(jax.random.key(seed), n_envs))
    states = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), states)
    n_visited = n_envs * n_steps
    _, keep = np.unique(np.asarray(shashes).reshape(-1, 2), axis=0, return_index=True)
    states = jax.tree.map(lambda x: x[keep], states)
    h = np.asarray(hashes).reshape(-1, 2)[keep]
    _, first, inverse = np.unique(h, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    others = np.nonzero(first[inverse] != np.arange(len(h)))[0]
    i_idx, j_idx = first[inverse[others]], others
    print(f"{env_id}: {n_visited} visited states, {len(h)} distinct states, "
          f"{len(first)} distinct observations, {len(others)} pairs to test", flush=True)
    if len(others) == 0:
        return
    if len(others) > max_pairs:
        others = np.random.default_rng(0).choice(others, max_pairs, replace=False)
    si = jax.tree.map(lambda x: x[i_idx], states)
    sj = jax.tree.map(lambda x: x[j_idx], states)
    actions = jnp.arange(env.num_actions)

    def pair(s1, s2):
        o1 = jnp.ravel(env.observe(fixed, s1, None, params))
        o2 = jnp.ravel(env.observe(fixed, s2, None, params))
        d = jax.vmap(lambda a: differs(outcome(env, params, fixed, s1, a),
                                       outcome(env, params, fixed, s2, a)))(actions)
        return jnp.all(o1 == o2), jnp.any(d)

    f = jax.jit(jax.vmap(pair))
    chunks = [f(jax.tree.map(lambda x: x[i:i + 1024], si), jax.tree.map(lambda x: x[i:i + 1024], sj))
              for i in range(0, len(j_idx), 1024)]
    same = np.concatenate([np.asarray(c[0]) for c in chunks])
    bad = np.concatenate([np.asarray(c[1]) for c in chunks])
    n_bad = int(np.sum(same & bad))
    print(f"{env_id}: {int(same.sum())} pairs with equal observations, {n_bad} of them step "
          f"differently for some action", flush=True)
    if n_bad:
        k = int(np.nonzero(same & bad)[0][0])
        print("  example, state 1:", jax.tree.map(lambda x: np.asarray(x[k]).tolist(), si))
        print("  example, state 2:", jax.tree.map(lambda x: np.asarray(x[k]).tolist(), sj))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env_ids", nargs="*", metavar="ENV_ID", help="gymnax ids, or generated worlds gymnax/Novel-Physics-<seed>, "
                        "gymnax/Novel-Grid-<seed> (default: all 26 gymnax ids)")
    parser.add_argument("--deep", action="store_true", help="experiment 3 at scale on the ENV_IDs given")
    return parser


if __name__ == "__main__":
    args = build_parser().parse_args()
    if args.deep:
        for env_id in args.env_ids:
            deep_collisions(env_id)
        sys.exit()
    for env_id in args.env_ids or ALL_IDS:
        try:
            check(env_id)
        except Exception as e:
            print(f"{env_id:26s} ERROR {type(e).__name__}: {str(e)[:200]}", flush=True)
