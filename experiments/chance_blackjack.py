"""Chance on gymnasium's Blackjack-v1 (issue 23, docs/chance.md): `python experiments/chance.py --env blackjack`.

1. Held-out likelihood, on the project's test split (20 episodes) and on a
   larger recording (`HELD_OUT` random-policy episodes, seeds disjoint from
   every split), of: the real env (each recorded (observation, action)
   sampled `MC_SAMPLES` times in gymnasium with its hands set to show the
   observation, `gymnasium_blackjack.sample_real`: an estimate independent
   of any model), the exact model (gymnasium's own rules enumerated), the
   reference chance CWM, a model with a wrong ten weight (2 of 11 instead of
   4 of 13), the same after `cwm-jax fit` on the project's train split and
   on `FIT_EPISODES` recorded episodes, and the best deterministic model.
2. Planning in the real env, `seeds` episodes per planner, the same deals
   for all (gymnasium seeds 0, 1, ...): stochastic MCTS (leaf value 0,
   undiscounted) with the reference, with the exact model and with the
   deterministic model; mctx's MuZero MCTS with the deterministic model; the
   optimal policy (dynamic programming on the exact model); uniform random.
   Beside the returns, each policy's exact expected return: its frequency
   of hitting at every observation (`ACTION_SAMPLES` decisions each; 1/2 for
   uniform random) evaluated on the exact model from gymnasium's start
   distribution, an unbiased estimate with a bootstrapped error.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

ENV = "gymnasium/Blackjack-v1"
WRONG_TEN = 2.0
MC_SAMPLES = 5_000
HELD_OUT = 5_000
FIT_EPISODES = 10_000
ACTION_SAMPLES = 16
# Every observation a decision is taken at (a usable ace means a sum of 12 or more).
OBSERVATIONS = np.array([(s, d, u) for s in range(4, 22) for d in range(1, 11) for u in range(2) if not u or s >= 12],
                        np.float32)


def real_env_log_prob(split) -> tuple[np.ndarray, float]:
    """(log P(recorded) float64 [N] by sampling the real env, the Monte Carlo standard error of their mean).

    Floored like `likelihood.PROBABILITY_FLOOR`. The error is the delta
    method's: each (observation, action)'s frequencies are multinomial.
    """
    from cwm_jax.envs.gymnasium_blackjack import sample_real
    from cwm_jax.score.likelihood import PROBABILITY_FLOOR

    pairs: dict[tuple, dict] = {}
    keys = []
    for s, a, ns, r, d in zip(split.state, split.action, split.next_state, split.reward, split.done):
        pair = (tuple(int(x) for x in s), int(a))
        if pair not in pairs:
            pairs[pair] = sample_real(pair[0], pair[1], MC_SAMPLES, seed=len(pairs))
        keys.append((pair, (tuple(int(x) for x in ns), float(r), bool(d))))
    p = np.array([pairs[pair].get(result, 0) / MC_SAMPLES for pair, result in keys])
    variance = 0.0
    for pair, counts in pairs.items():
        seen: dict[tuple, int] = {}
        for key_pair, result in keys:
            if key_pair == pair:
                seen[result] = seen.get(result, 0) + 1
        probs = {result: counts.get(result, 0) / MC_SAMPLES for result in seen}
        g = {result: m / (len(keys) * probs[result]) for result, m in seen.items() if probs[result] > 0}
        variance += (sum(g[o] ** 2 * probs[o] for o in g) - sum(g[o] * probs[o] for o in g) ** 2) / MC_SAMPLES
    return np.log(np.maximum(p, PROBABILITY_FLOOR)), float(np.sqrt(variance))


def likelihood_rows(models: dict, split, label: str) -> dict:
    from cwm_jax import check
    from cwm_jax.score import likelihood
    from cwm_jax.validate import chance

    rows = {}
    print(f"\nheld-out likelihood, {label} ({len(split)} transitions)")
    print(f"  {'model':<34} {'log-lik':>8} {'± s.e.':>7} {'support':>8} {'ECE':>6} {'value':>6} {'accuracy':>8}")
    start = time.perf_counter()
    log_p, mc_error = real_env_log_prob(split)
    rows["real env (sampled)"] = {"log_likelihood": float(log_p.mean()), "standard_error": float(
        log_p.std() / np.sqrt(len(log_p))), "monte_carlo_error": mc_error, "support_accuracy": float(
        (log_p > np.log(likelihood.PROBABILITY_FLOOR)).mean()), "seconds": time.perf_counter() - start}
    print(f"  {'real env, ' + str(MC_SAMPLES) + ' samples per pair':<34} {log_p.mean():8.4f} "
          f"{rows['real env (sampled)']['standard_error']:7.4f}  (Monte Carlo error of the mean {mc_error:.4f})")
    for name, model in models.items():
        report = likelihood.likelihood(model, split)
        summary = report.summary()
        floored = np.maximum(report.log_prob, np.log(likelihood.PROBABILITY_FLOOR))
        summary["standard_error"] = float(floored.std() / np.sqrt(len(floored)))
        summary["accuracy"] = check(chance.mode_step(model), split).accuracy
        summary["difference_to_real_env"] = float((floored - log_p).mean())  # paired, per transition
        summary["difference_standard_error"] = float((floored - log_p).std() / np.sqrt(len(log_p)))
        rows[name] = summary
        print(f"  {name:<34} {summary['log_likelihood']:8.4f} {summary['standard_error']:7.4f} "
              f"{summary['support_accuracy']:8.3f} {summary['calibration_error']:6.3f} "
              f"{summary[likelihood.LIKELIHOOD_VALUE]:6.3f} {summary['accuracy']:8.3f}")
    return rows


def fit(spec, source: str, splits=None) -> tuple[str, dict]:
    from cwm_jax.data.transitions import load_split
    from cwm_jax.fit import fitting

    start = time.perf_counter()
    train = load_split(spec, "train") if splits is None else splits["train"]
    report = fitting.fit_source(source, spec, load_split=None if splits is None else (lambda s, name: splits[name]))
    weight = report.changed[0]["new"] if report.changed else WRONG_TEN  # none: the fit was not kept
    ten = weight / (9.0 + weight)
    return report.program, {"kept": bool(report.changed), "ten_weight": weight, "ten_probability": ten,
                            "error": ten - 4 / 13,
                            "hits_in_train": int((train.action == 1).sum()),
                            **report.likelihood, "seconds": time.perf_counter() - start}


def play(spec, policy, seeds: int) -> np.ndarray:
    """float64 [seeds]: returns of one episode per gymnasium seed 0..seeds-1, deciding only for running games.

    The running games are padded to a power of two (at least 512), so the
    jitted, vmapped policy compiles a few times at most.
    """
    import jax
    import jax.numpy as jnp

    from cwm_jax.envs.gymnasium_source import flatten_observation, make_env

    decide = jax.jit(jax.vmap(policy))
    games = [make_env(spec.name) for _ in range(seeds)]
    states = np.stack([flatten_observation(g.observation_space, g.reset(seed=i)[0]) for i, g in enumerate(games)])
    returns, running, key = np.zeros(seeds), np.arange(seeds), jax.random.key(0)
    while len(running):
        size = max(1 << (len(running) - 1).bit_length(), 512)
        key, sub = jax.random.split(key)
        batch = np.concatenate([states[running], np.repeat(states[running[:1]], size - len(running), 0)])
        actions = np.asarray(decide(jax.random.split(sub, size), jnp.asarray(batch)))[:len(running)]
        still = []
        for i, action in zip(running, actions):
            obs, reward, terminated, truncated, _ = games[i].step(int(action))
            states[i] = flatten_observation(games[i].observation_space, obs)
            returns[i] += reward
            if not (terminated or truncated):
                still.append(i)
        running = np.array(still, np.int64)
    return returns


def exact_return(policy, hit_probability=None) -> tuple[float, float]:
    """(the expected return of `policy` on the exact model, its standard error), from its hit frequency per observation.

    Each observation is met at most once per game (a hit raises the sum), so
    the return is linear in each observation's hit probability: with
    `ACTION_SAMPLES` independent decisions per observation it is an unbiased
    estimate; the error is bootstrapped over those decisions.
    `hit_probability` (float): known exactly, no decisions drawn.
    """
    import jax
    import jax.numpy as jnp

    from cwm_jax.envs import gymnasium_blackjack as blackjack

    at = tuple(OBSERVATIONS.astype(int).T)

    def value(frequencies):
        hit = np.zeros((blackjack.SUMS, blackjack.CARDS, 2))
        hit[at] = frequencies
        return blackjack.policy_return(hit)

    if hit_probability is not None:
        return value(np.full(len(OBSERVATIONS), hit_probability)), 0.0
    states = jnp.asarray(np.repeat(OBSERVATIONS, ACTION_SAMPLES, 0))
    keys = jax.random.split(jax.random.key(1), len(states))
    actions = np.asarray(jax.jit(jax.vmap(policy))(keys, states)).reshape(-1, ACTION_SAMPLES)
    rng = np.random.default_rng(0)
    boot = [value(np.take_along_axis(actions, rng.integers(0, ACTION_SAMPLES, actions.shape), 1).mean(1))
            for _ in range(200)]
    return value(actions.mean(axis=1)), float(np.std(boot))


def planners_for(models: dict, simulations: int) -> dict:
    import jax
    import jax.numpy as jnp

    import planners
    from cwm_jax.envs import gymnasium_blackjack as blackjack
    from cwm_jax.validate import chance
    from planners.stochastic_mcts import make_stochastic_mcts_planner

    settings = {"num_actions": 2, "num_simulations": simulations, "rollout_depth": 0, "discount": 1.0}
    table = jnp.asarray(blackjack.optimal_values()[1], jnp.int32)

    def optimal(key, state):
        del key
        s = jnp.round(state).astype(jnp.int32)
        return table[s[0], s[1], s[2]]

    def uniform(key, state):
        del state
        return jax.random.randint(key, (), 0, 2, dtype=jnp.int32)

    return {
        "stochastic MCTS, reference CWM": make_stochastic_mcts_planner(models["reference CWM"], **settings),
        "stochastic MCTS, exact model": make_stochastic_mcts_planner(models["exact model"], **settings),
        "stochastic MCTS, deterministic CWM": make_stochastic_mcts_planner(models["deterministic"], **settings),
        "mctx MuZero MCTS, deterministic CWM": planners.make_mcts_planner(
            chance.mode_step(models["deterministic"]), **settings),
        "optimal policy (exact DP)": optimal,
        "uniform random": uniform,
    }


def run(*, seeds: int, simulations: int, json_path: str | None) -> int:
    from cwm_jax import envs, reference
    from cwm_jax.data.transitions import Transitions, load_split
    from cwm_jax.envs import gymnasium_blackjack as blackjack
    from cwm_jax.validate import chance

    spec = envs.env_spec(ENV)
    wrong = reference.source(spec).replace("TEN_WEIGHT = 4.0", f"TEN_WEIGHT = {WRONG_TEN}")
    big = {name: Transitions(**blackjack.record_random(episodes, first_seed=seed))
           for name, episodes, seed in (("train", FIT_EPISODES, 1_000_000), ("test", HELD_OUT, 2_000_000))}
    fitted_small, small_fit = fit(spec, wrong)
    fitted_big, big_fit = fit(spec, wrong, big)
    figures = {"fit": {"project's train split": small_fit, f"{FIT_EPISODES} recorded episodes": big_fit}}
    for name, result in figures["fit"].items():
        print(f"fit on {name} ({result['hits_in_train']} hits), kept: {result['kept']}: ten weight {WRONG_TEN} -> "
              f"{result['ten_weight']:.4f}, probability "
              f"{result['ten_probability']:.4f} (truth {4 / 13:.4f}, off by {result['error']:+.4f}); held-out "
              f"log-lik {result['test_before']:.4f} -> {result['test_after']:.4f} ({result['seconds']:.0f} s)")
    models = {
        "exact model": blackjack.table_model(),
        "reference CWM": chance.load_chance_cwm(reference.source(spec), spec),
        f"wrong (ten weight {WRONG_TEN})": chance.load_chance_cwm(wrong, spec),
        f"fitted on the train split ({small_fit['ten_weight']:.3f})": chance.load_chance_cwm(fitted_small, spec),
        f"fitted on {FIT_EPISODES} episodes ({big_fit['ten_weight']:.3f})": chance.load_chance_cwm(fitted_big, spec),
        "deterministic": chance.load_chance_cwm(reference.deterministic_source(spec), spec),
    }
    figures["likelihood"] = {
        "test split": likelihood_rows(models, load_split(spec, "test"), "the project's test split"),
        "held-out recording": likelihood_rows(models, big["test"], f"{HELD_OUT} recorded episodes"),
    }
    print(f"\nplanning in the real env: {seeds} episodes per planner (the same deals), {simulations} simulations "
          f"per decision; exact expected return of each policy ({ACTION_SAMPLES} decisions per observation)")
    figures["planning"] = {"seeds": seeds, "simulations": simulations}
    returns = {}
    for name, policy in planners_for(models, simulations).items():
        start = time.perf_counter()
        returns[name] = played = play(spec, policy, seeds)
        exact, exact_error = exact_return(policy, 0.5 if name == "uniform random" else None)
        figures["planning"][name] = row = {
            "mean_return": float(played.mean()), "standard_error": float(played.std() / np.sqrt(seeds)),
            "exact_expected_return": exact, "exact_standard_error": exact_error,
            "seconds": time.perf_counter() - start}
        print(f"  {name:<38} {row['mean_return']:7.4f} ± {row['standard_error']:.4f}   exact {exact:7.4f} "
              f"± {exact_error:.4f}  ({row['seconds']:.0f} s)")
    for name, played in returns.items():  # the same deals: paired differences
        difference = played - returns["stochastic MCTS, exact model"]
        figures["planning"][name]["paired_difference_to_exact_model_mcts"] = float(difference.mean())
        figures["planning"][name]["paired_standard_error"] = float(difference.std() / np.sqrt(seeds))
        print(f"  {name:<38} minus exact-model MCTS, same deals: {difference.mean():+.4f} "
              f"± {difference.std() / np.sqrt(seeds):.4f}")
    rows = figures["planning"]
    base = rows["uniform random"]["exact_expected_return"]
    for against in ("stochastic MCTS, exact model", "optimal policy (exact DP)"):
        top = rows[against]["exact_expected_return"]
        for name in ("stochastic MCTS, reference CWM", "stochastic MCTS, deterministic CWM",
                     "mctx MuZero MCTS, deterministic CWM"):
            ratio = (rows[name]["exact_expected_return"] - base) / (top - base)
            rows[name][f"normalized_vs {against}"] = ratio
            print(f"  normalized (random 0, {against} 1): {name}: {ratio:.3f}")
    if json_path:
        Path(json_path).write_text(json.dumps(figures, indent=1))
    return 0
