"""Check every registered environment against gymnax.

For each env in the registry:

  1. Rollouts of the real gymnax env (`step_env` on the true hidden state,
     from real reset states, cut at termination and at the time limit), with
     the random policy and with the heuristic policy.
  2. Oracle check: `spec.oracle_step(obs, action)` (state rebuilt from the
     observation) against gymnax's own outputs on those transitions, and the
     round trip obs -> state_from_obs -> get_obs.
  3. Reference check: the hand-written reference CWM against the oracle, on
     EVERY transition: |pred - true| <= 1e-5 + 1e-5 |true| for next_state and
     reward, done exactly.
  4. Mean episode return of the heuristic and of the random policy.
  5. Broad check: reference vs oracle on states drawn uniformly from boxes
     wider than what episodes visit (clipping and wall branches), with random
     actions. Reported, and failures there count too.

Usage: python experiments/check_envs.py [ENV_ID ...] [--episodes N] [--min-transitions M]
Exits non-zero if any reference or oracle transition fails the tolerance.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import planners
from cwm_jax import envs

ATOL = 1e-5
RTOL = 1e-5


def rollouts(spec: envs.EnvSpec, policy, key, n_episodes: int):
    """Transitions of full episodes of the real env; `valid` marks real ones.

    Episodes run `params.max_steps_in_episode` steps of the project's episode
    loop (`planners.episode.rollout`: gymnax `step_env` on the true state).
    """
    env, params = spec.make_gymnax()
    horizon = int(params.max_steps_in_episode)

    def episode(key):
        out = planners.rollout(env, params, policy, key, num_steps=horizon, obs_fn=spec.flatten_obs,
                               action_fn=spec.to_gymnax_action)
        return jnp.sum(jnp.where(out.valid, out.reward, 0.0)), tuple(out)

    ret, out = jax.jit(jax.vmap(episode))(jax.random.split(key, n_episodes))
    obs, action, next_obs, reward, done, valid = jax.tree.map(
        lambda x: x.reshape((-1,) + x.shape[2:]), out
    )
    keep = np.asarray(valid)
    pick = lambda x: jnp.asarray(np.asarray(x)[keep])
    return np.asarray(ret), tuple(pick(x) for x in (obs, action, next_obs, reward, done))


def uniform(key, low, high):
    low = jnp.asarray(low, jnp.float32)
    return jax.random.uniform(key, low.shape, jnp.float32, low, jnp.asarray(high, jnp.float32))


def catch_obs(key):
    k1, k2, k3 = jax.random.split(key, 3)
    grid = jnp.zeros((10, 5), jnp.float32)
    grid = grid.at[jax.random.randint(k1, (), 0, 9), jax.random.randint(k2, (), 0, 5)].set(1.0)
    return grid.at[9, jax.random.randint(k3, (), 0, 5)].set(1.0).reshape(-1)


def angles_obs(key, n_angles, low, high):
    ka, kv = jax.random.split(key)
    th = uniform(ka, [-np.pi] * n_angles, [np.pi] * n_angles)
    trig = jnp.stack([jnp.cos(th), jnp.sin(th)], axis=1).reshape(-1)
    return jnp.concatenate([trig, uniform(kv, low, high)])


def reacher_obs(key):
    k1, k2 = jax.random.split(key)
    trig_vel = angles_obs(k1, 2, [-3, -3], [3, 3])  # cos1 sin1 cos2 sin2 v1 v2
    return jnp.concatenate([trig_vel[jnp.array([0, 2, 1, 3, 4, 5])], uniform(k2, [-2, -2], [2, 2])])


# Observations drawn from boxes a bit wider than what episodes visit.
BROAD = {
    # CartPole: only non-terminal states (gymnax gives reward 0 from an already
    # terminal state, which episodes never step from).
    "CartPole": lambda k: uniform(k, [-2.4, -4, -0.2, -4], [2.4, 4, 0.2, 4]),
    "Acrobot": lambda k: angles_obs(k, 2, [-15, -32], [15, 32]),
    "MountainCar": lambda k: uniform(k, [-1.2, -0.07], [0.6, 0.07]),
    "MountainCarContinuous": lambda k: uniform(k, [-1.2, -0.07], [0.6, 0.07]),
    "Pendulum": lambda k: angles_obs(k, 1, [-8], [8]),
    "Catch": catch_obs,
    "Reacher": lambda k: reacher_obs(k),
    "Swimmer": lambda k: uniform(k, [-1] * 10 + [-3, -3, -2, -2, -1, -1], [1] * 10 + [3, 3, 2, 2, 1, 1]),
}


def random_policy(spec):
    return lambda key, obs: spec.random_action(key)


def errors(pred, true):
    """(max abs error, max rel error, number of elements beyond tolerance)."""
    pred = np.asarray(pred, np.float64)
    true = np.asarray(true, np.float64)
    diff = np.abs(pred - true)
    bad = diff > ATOL + RTOL * np.abs(true)
    rel = diff / np.maximum(np.abs(true), 1e-30)
    rel = np.where(diff > 0, rel, 0.0)
    return float(diff.max(initial=0)), float(rel.max(initial=0)), int(bad.sum())


def bad_rows(pred, true):
    pred = np.asarray(pred, np.float64).reshape(len(pred), -1)
    true = np.asarray(true, np.float64).reshape(len(true), -1)
    return np.any(np.abs(pred - true) > ATOL + RTOL * np.abs(true), axis=1)


def check(spec: envs.EnvSpec, n_episodes: int, min_transitions: int) -> bool:
    t0 = time.time()
    env, params = spec.make_gymnax()
    key = jax.random.key(2026)
    k_rand, k_heur = jax.random.split(key)
    ret_r, data_r = rollouts(spec, random_policy(spec), k_rand, n_episodes)
    ret_h, data_h = rollouts(spec, spec.heuristic_policy, k_heur, n_episodes)
    episodes = n_episodes
    while len(data_r[0]) + len(data_h[0]) < min_transitions:  # short episodes (Catch)
        episodes *= 2
        _, data_r = rollouts(spec, random_policy(spec), k_rand, episodes)
        _, data_h = rollouts(spec, spec.heuristic_policy, k_heur, episodes)
    obs, action, next_obs, reward, done = (
        jnp.concatenate([a, b]) for a, b in zip(data_r, data_h)
    )
    n = obs.shape[0]

    oracle = jax.jit(jax.vmap(spec.oracle_step))
    o_next, o_reward, o_done = oracle(obs, action)
    ref = importlib.import_module(f"cwm_jax.reference.{spec.reference}")
    r_next, r_reward, r_done = jax.jit(jax.vmap(ref.step))(obs, action)

    # Round trip obs -> EnvState -> obs.
    round_trip = jax.jit(jax.vmap(
        lambda o: spec.flatten_obs(env.get_obs(spec.state_from_obs(o), params))
    ))(obs)

    ok = True
    lines = [f"{spec.name}: {n} transitions ({len(data_r[0])} random, {len(data_h[0])} "
             f"heuristic), {int(np.sum(done))} terminal"]
    for label, (pn, pr, pd), (tn, tr, td) in [
        ("oracle vs gymnax   ", (o_next, o_reward, o_done), (next_obs, reward, done)),
        ("reference vs oracle", (r_next, r_reward, r_done), (o_next, o_reward, o_done)),
        ("reference vs gymnax", (r_next, r_reward, r_done), (next_obs, reward, done)),
    ]:
        ea, er, eb = errors(pn, tn)
        ra, rr, rb = errors(pr, tr)
        db = int(np.sum(np.asarray(pd) != np.asarray(td)))
        rows = int(np.sum(bad_rows(pn, tn) | bad_rows(pr, tr) | (np.asarray(pd) != np.asarray(td))))
        lines.append(
            f"  {label}: next_state max abs {ea:.2e} max rel {er:.2e} | reward max abs "
            f"{ra:.2e} max rel {rr:.2e} | done mismatches {db} | failing transitions {rows}/{n}"
        )
        if label.startswith("reference vs oracle") and rows:
            ok = False
            i = int(np.nonzero(bad_rows(pn, tn) | bad_rows(pr, tr)
                               | (np.asarray(pd) != np.asarray(td)))[0][0])
            lines.append(f"    first failure: obs={np.asarray(obs[i]).tolist()} "
                         f"action={np.asarray(action[i]).tolist()}")
    if spec.name in BROAD:
        kb_s, kb_a = jax.random.split(jax.random.key(7))
        b_obs = jax.vmap(BROAD[spec.name])(jax.random.split(kb_s, 4096))
        b_act = jax.vmap(spec.random_action)(jax.random.split(kb_a, 4096))
        bo = oracle(b_obs, b_act)
        br = jax.jit(jax.vmap(ref.step))(b_obs, b_act)
        ea, er, _ = errors(br[0], bo[0])
        ra, rr, _ = errors(br[1], bo[1])
        rows = int(np.sum(bad_rows(br[0], bo[0]) | bad_rows(br[1], bo[1])
                          | (np.asarray(br[2]) != np.asarray(bo[2]))))
        ok &= rows == 0
        lines.append(f"  broad states (4096): reference vs oracle next_state max abs {ea:.2e} "
                     f"max rel {er:.2e} | reward max abs {ra:.2e} | failing {rows}")
    ta, tr_, tb = errors(round_trip, obs)
    lines.append(f"  round trip obs->state->obs: max abs {ta:.2e} max rel {tr_:.2e} beyond tol {tb}")
    lines.append(
        f"  return over {n_episodes} episodes: heuristic {ret_h.mean():.2f} +- {ret_h.std():.2f}, "
        f"random {ret_r.mean():.2f} +- {ret_r.std():.2f}  ({time.time() - t0:.0f}s)"
    )
    print("\n".join(lines), flush=True)
    return ok


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("env_ids", nargs="*")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--min-transitions", type=int, default=2000)
    return parser


def main() -> int:
    args = build_parser().parse_args()
    specs = [envs.env_spec(e) for e in args.env_ids] if args.env_ids else list(envs.SPECS)
    ok = all([check(spec, args.episodes, args.min_transitions) for spec in specs])
    print("ALL OK" if ok else "FAILURES")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
