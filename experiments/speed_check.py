"""Benchmark: checking a CWM against N transitions, vmapped JAX vs a Python loop.

    python experiments/speed.py check [--sizes 10000 100000] [--json PATH]

(a) the framework's check: one jitted, vmapped call of the CartPole reference
    CWM over N transitions (compile time reported apart, then the median of
    several calls);
(b) the published approach: a plain Python loop over the same transitions,
    calling an equivalent NumPy model one transition at a time and comparing
    with np.allclose, as the paper's checker does.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import jax
import numpy as np

from cwm_jax import envs
from cwm_jax.score import accuracy
from cwm_jax.data import transitions as data
from cwm_jax.validate import loader


class NumpyCartPole:
    """The CartPole dynamics in NumPy, one transition per call (the paper's style)."""

    def set_state(self, state: np.ndarray) -> None:
        self.state = np.array(state, dtype=np.float32)

    def step(self, action: int):
        x, x_dot, theta, theta_dot = self.state
        force = 10.0 if action == 1 else -10.0
        cos_t, sin_t = np.cos(theta), np.sin(theta)
        temp = (force + 0.05 * theta_dot**2 * sin_t) / 1.1
        theta_acc = (9.8 * sin_t - cos_t * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos_t**2 / 1.1))
        x_acc = temp - 0.05 * theta_acc * cos_t / 1.1
        self.state = np.array(
            [x + 0.02 * x_dot, x_dot + 0.02 * x_acc, theta + 0.02 * theta_dot, theta_dot + 0.02 * theta_acc],
            dtype=np.float32,
        )
        done = abs(self.state[0]) > 2.4 or abs(self.state[2]) > 12 * 2 * math.pi / 360
        return self.state, 1.0, done


def make_transitions(n: int, seed: int = 0) -> data.Transitions:
    """N CartPole transitions from live recorded states with small noise, labelled by the oracle."""
    spec = envs.env_spec("CartPole")
    base = data.load_split(spec, "train")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(base), n)
    state = (base.state[index] + rng.normal(0, 0.01, (n, spec.obs_dim))).astype(np.float32)
    # Noise must not push a state past termination: the contract starts from live states.
    live = (np.abs(state[:, 0]) <= 2.4) & (np.abs(state[:, 2]) <= 0.2)
    state = np.where(live[:, None], state, base.state[index])
    action = rng.integers(0, spec.num_actions, n).astype(np.int32)
    next_state, reward, done = jax.jit(jax.vmap(spec.oracle_step))(state, action)
    return data.Transitions(state, action, np.asarray(next_state), np.asarray(reward), np.asarray(done),
                            np.zeros(n, np.int32))


def time_vmapped(step, transitions: data.Transitions, repeats: int) -> tuple[float, float, float]:
    """(compile seconds, median run seconds, accuracy)."""
    checker = accuracy.make_checker(step)
    args = (transitions.state, transitions.action, transitions.next_state, transitions.reward, transitions.done)
    start = time.perf_counter()
    jax.block_until_ready(checker(*args))
    first = time.perf_counter() - start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(checker(*args))
        runs.append(time.perf_counter() - start)
    run = statistics.median(runs)
    report = accuracy.report_from_comparison(transitions, out)
    return max(first - run, 0.0), run, report.accuracy


def time_python_loop(transitions: data.Transitions) -> tuple[float, float]:
    """(seconds, accuracy) of the one-transition-at-a-time NumPy checker."""
    model = NumpyCartPole()
    score = 0.0
    start = time.perf_counter()
    for s, a, ns, r, d in zip(transitions.state, transitions.action, transitions.next_state,
                              transitions.reward, transitions.done):
        model.set_state(s)
        pred_s, pred_r, pred_d = model.step(int(a))
        score += (float(np.allclose(pred_s, ns, rtol=1e-5, atol=1e-5))
                  + float(abs(pred_r - r) <= 1e-5 + 1e-5 * abs(r)) + float(pred_d == d)) / 3
    return time.perf_counter() - start, score / len(transitions)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="numbers of transitions")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of the vmapped check (median)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")


def run(args: argparse.Namespace) -> dict:
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; CartPole reference CWM")
    step = loader.load_reference("CartPole")
    rows = []
    for n in args.sizes:
        transitions = make_transitions(n)
        compile_s, run_s, acc = time_vmapped(step, transitions, args.repeats)
        loop_s, loop_acc = time_python_loop(transitions)
        rows.append({
            "transitions": n, "vmapped_compile_s": compile_s, "vmapped_run_s": run_s,
            "vmapped_transitions_per_s": n / run_s, "python_loop_s": loop_s,
            "python_loop_transitions_per_s": n / loop_s, "speedup": loop_s / run_s,
            "vmapped_accuracy": acc, "python_loop_accuracy": loop_acc,
        })
    print(f"\n{'N':>8} {'compile s':>10} {'vmapped s':>10} {'vmapped tr/s':>14} {'python s':>10} "
          f"{'python tr/s':>12} {'speedup':>9}")
    for row in rows:
        print(f"{row['transitions']:>8} {row['vmapped_compile_s']:>10.3f} {row['vmapped_run_s']:>10.5f} "
              f"{row['vmapped_transitions_per_s']:>14.3g} {row['python_loop_s']:>10.3f} "
              f"{row['python_loop_transitions_per_s']:>12.3g} {row['speedup']:>8.0f}x")
    for row in rows:
        print(f"accuracy at N={row['transitions']}: vmapped {row['vmapped_accuracy']:.4f}, "
              f"python loop {row['python_loop_accuracy']:.4f}")
    result = {"benchmark": "check", "device": jax.devices()[0].platform, "rows": rows}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
        print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    run(parser.parse_args())
