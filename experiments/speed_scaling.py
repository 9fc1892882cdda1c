"""MCTS scaling: the sequential work of one decision, and time per simulation from batch 1 up.

    python experiments/speed.py plan --scaling [--json PATH] [--batches 1,4,...] [--budget-s 240]

CartPole, reference CWM (in-process Python, as `plan --cwm python`), mctx
muzero with `speed.py plan`'s settings (25 simulations, discount 0.99, a fresh
tree every real step). Variants, timed in one process:
  rollouts        one random rollout of <= 100 steps per leaf (the paper's),
                  `rollout_unroll` at this backend's default;
  rollouts-uK     the same with the other rollout_unroll (1 where the
                  default is not 1, else 8), at the `--compare-batches` only;
  learned         a learned value and prior: an UNTRAINED PPO ActorCritic
                  (64, 64), which costs exactly what a trained one does.
Per (variant, batch): compile seconds apart, then the fastest of `--repeats`
calls of `--steps` real steps (plan + env.step, auto-reset; the median is
recorded too): seconds per decision, simulations per second, microseconds per
simulation-batch.
At the compare batches (on a CPU; `--iterations` elsewhere: the counts do
not depend on the backend), the sequential loop iterations of one decision
from reset states: the simulation `fori_loop` (25), mctx's
`simulate` and `backward` while loops (each runs as long as the deepest row:
read exactly from the tree's node depths), and the rollout loops (the longest
row per leaf, re-measured from the tree's leaf states with fresh keys: an
estimate with the search's own distribution). And, from the compiled HLO of
one decision at batch 16: the number of `while` loops, those inside
jax.random (threefry is a rolled loop on CPU only), and for the search's own
loops the trip count when XLA knows it and the instructions in their bodies
(on a GPU each body instruction is roughly one kernel launch per iteration).

Points run in the order a short lease needs most: rollouts and learned at
the compare batches, then at the other batches, then the other unroll, then
the HLO counts. Every point is written to the JSON as soon as it is
measured, and no new point starts once `--budget-s` has passed, so a short
GPU lease always returns what it measured.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

SIMS = 25
DEPTH = 100
DISCOUNT = 0.99
CPU_BATCHES = "1,4,16,64,256,1024,4096"
ACCEL_BATCHES = "1,4,16,64,256,1024,4096,16384"
COMPARE_BATCHES = "1,16,256,4096"
_TRIVIAL = ("parameter", "get-tuple-element", "tuple", "constant", "bitcast")
_RNG = re.compile(r"jit\(_(threefry\w*|uniform|randint|gumbel|normal\w*|gamma|dirichlet|exponential)\)")


def hlo_loops(text: str) -> dict:
    """Loop statistics of a compiled HLO module's text (`compiled.as_text()`).

    Returns:
      {"while_loops": count, "rng_loops": those inside a jax.random function
       (on a CPU, threefry is lowered as a 5-round loop), "known_trip_count":
       loops with a trip count XLA knows, "model_loops": [{"trip_count": int
       or None, "body_instructions": int}] for the other loops (the
       simulation loop, mctx's simulate and backward, the rollouts), largest
       body first, "total_instructions"}. Body instructions are the
       non-trivial instructions of the body computation; a nested loop's are
       counted in its own body.
    """
    bodies: dict[str, int] = {}
    name = None
    for line in text.splitlines():
        line = re.sub(r"/\*.*?\*/", "", line)
        head = re.match(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s+\(", line)
        if head and line.rstrip().endswith("{"):
            name, bodies[head.group(1)] = head.group(1), 0
            continue
        op = re.match(r"^\s+(?:ROOT\s+)?%[\w.\-]+\s=\s(?:\(.*?\)|\S+)\s([a-z][\w\-]*)\(", line)
        if name and op and op.group(1) not in _TRIVIAL:
            bodies[name] += 1
    loops = []
    for line in re.findall(r"^.*\swhile\(.*$", text, flags=re.M):
        body = re.search(r"body=%?([\w.\-]+)", line)
        trips = re.search(r'known_trip_count":\{"n":"(\d+)"', line)
        op_name = re.search(r'op_name="([^"]*)"', line)
        loops.append({
            "trip_count": int(trips.group(1)) if trips else None,
            "body_instructions": bodies.get(body.group(1), 0) if body else 0,
            "rng": bool(op_name and _RNG.search(op_name.group(1))),
        })
    model = sorted(({k: v for k, v in loop.items() if k != "rng"} for loop in loops if not loop["rng"]),
                   key=lambda loop: -loop["body_instructions"])
    return {
        "while_loops": len(loops),
        "rng_loops": sum(loop["rng"] for loop in loops),
        "known_trip_count": sum(loop["trip_count"] is not None for loop in loops),
        "model_loops": model,
        "total_instructions": sum(bodies.values()),
    }


def _node_depths(parents):
    """int [B, N] depth of every node from mctx's `tree.parents` [B, N] (root 0)."""
    import numpy as np

    parents = np.asarray(parents)
    depth = np.zeros_like(parents)
    for i in range(1, parents.shape[1]):  # a node's parent always has a smaller index
        depth[:, i] = depth[np.arange(parents.shape[0]), np.maximum(parents[:, i], 0)] + 1
    return depth


def sequential_iterations(search, step_fn, states, *, rollouts: bool, unroll: int) -> dict:
    """Loop iterations of one batched decision (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import planners

    batch = states.shape[0]
    tree = jax.jit(search)(jax.random.key(1), states).search_tree
    depth = _node_depths(tree.parents)[:, 1:]  # node i + 1 is expanded by simulation i
    per_sim = depth.max(axis=0)
    out = {"simulations": SIMS, "simulate": int(per_sim.sum()), "backward": int(per_sim.sum()),
           "max_tree_depth": int(depth.max())}
    if rollouts:
        def unit_reward(state, action):  # reward 1 per step: the return counts the steps taken
            next_state, _, done = step_fn(state, action)
            return next_state, jnp.ones((), jnp.float32), done

        def length(key, state):
            actions = planners.uniform_discrete_actions(2)(key, DEPTH)
            return planners.rollout_return(unit_reward, state, actions, discount=1.0)

        nodes = tree.embeddings.state.reshape(-1, states.shape[-1])
        keys = jax.random.split(jax.random.key(2), nodes.shape[0])
        lengths = np.asarray(jax.jit(jax.vmap(length))(keys, nodes)).reshape(batch, -1)
        per_leaf = np.ceil(lengths.max(axis=0) / unroll)  # root value + one leaf per simulation
        out["rollout"] = int(per_leaf.sum())
        out["rollout_steps_longest_row_mean"] = float(lengths.max(axis=0).mean())
    else:
        out["rollout"] = 0
    out["total"] = out["simulations"] + out["simulate"] + out["backward"] + out["rollout"]
    return out


def _learned(spec):
    """value_fn and prior_fn of an untrained PPO ActorCritic (64, 64) for `spec` (same cost as trained)."""
    import jax
    import jax.numpy as jnp

    from planners import ppo, ppo_network

    env, params = spec.make_gymnax()
    network, _ = ppo_network.network_for(env, params, (64, 64))
    weights = network.init(jax.random.key(0), jnp.zeros((spec.obs_dim,), jnp.float32))
    return {"value_fn": ppo.make_value_fn(network, weights), "prior_fn": ppo.make_prior_fn(network, weights)}


def measure(spec, plan, *, batch: int, steps: int, repeats: int) -> dict:
    """Compile, then `repeats` timed calls of `steps` real steps for `batch` rows; rates from the fastest call.

    The fastest call is the one least disturbed by other jobs on a shared
    machine; the median is kept in the record as well.
    """
    import statistics

    import jax

    from speed import _planning_loop

    keys = jax.random.split(jax.random.key(0), batch)
    start = time.perf_counter()
    compiled = _planning_loop(spec, plan, batch, steps).lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys))
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"batch": batch, "real_steps": steps, "compile_seconds": compile_seconds, "seconds": best,
            "seconds_median": statistics.median(times), "s_per_decision": best / steps,
            "sims_per_s": batch * steps * SIMS / best, "us_per_sim_batch": best / (steps * SIMS) * 1e6}


def run(args) -> dict:
    import jax

    import planners
    from cwm_jax import envs
    from cwm_jax.validate.loader import load_reference
    from planners.mcts import rollout_unroll

    start = time.perf_counter()
    backend = jax.default_backend()
    batches = [int(b) for b in (args.batches or (CPU_BATCHES if backend == "cpu" else ACCEL_BATCHES)).split(",")]
    compare = [b for b in map(int, args.compare_batches.split(",")) if b in batches]
    steps, repeats = args.steps or 5, args.repeats
    spec = envs.env_spec("gymnax/CartPole")
    step_fn = load_reference(spec)
    base = planners.MCTSConfig(num_actions=spec.num_actions, num_simulations=SIMS, rollout_depth=DEPTH,
                               discount=DISCOUNT)
    default_unroll = rollout_unroll(base)
    other = 8 if default_unroll == 1 else 1
    variants = {  # name: (planner arguments, leaf values from rollouts, rollout_unroll)
        "rollouts": ({"config": base}, True, default_unroll),
        f"rollouts-u{other}": ({"config": base, "rollout_unroll": other}, True, other),
        "learned": ({"config": base, **_learned(spec)}, False, default_unroll),
    }
    iterations = backend == "cpu" if args.iterations is None else args.iterations
    record = {
        "device": str(jax.devices()[0]), "backend": backend, "jax": jax.__version__,
        "settings": {"env": spec.id, "policy": "muzero", "simulations": SIMS, "rollout_depth": DEPTH,
                     "discount": DISCOUNT, "real_steps": steps, "repeats": repeats,
                     "rollout_unroll_default": default_unroll, "budget_s": args.budget_s},
        "points": {name: {} for name in variants}, "iterations": {name: {} for name in variants}, "hlo": {},
        "skipped": [],
    }

    def save():
        if args.json:
            Path(args.json).write_text(json.dumps(record, indent=2) + "\n")

    print(f"device: {record['device']} ({backend}); MCTS scaling on CartPole, {SIMS} sims, "
          f"default rollout_unroll {default_unroll}; batches {batches}", flush=True)
    env, env_params = spec.make_gymnax()
    reset = jax.jit(jax.vmap(lambda k: spec.flatten_obs(env.reset_env(k, env_params)[0])))
    built = {name: (planners.make_mcts_search(step_fn, **kw), planners.make_mcts_planner(step_fn, **kw))
             for name, (kw, _, _) in variants.items()}
    # The order a short lease needs most: the compare batches, then the rest, then the other unroll.
    alt = f"rollouts-u{other}"
    order = [(n, b) for b in compare for n in ("rollouts", "learned")]
    order += [(n, b) for b in batches if b not in compare for n in ("rollouts", "learned")]
    order += [(alt, b) for b in compare]
    for name, batch in order:
        if time.perf_counter() - start > args.budget_s:
            record["skipped"].append(f"{name}@{batch}")
            continue
        search, plan = built[name]
        _, rollouts, unroll = variants[name]
        out = measure(spec, plan, batch=batch, steps=steps, repeats=repeats)
        record["points"][name][str(batch)] = out
        line = (f"  {name:<12} batch {batch:>6}: compile {out['compile_seconds']:5.1f} s, "
                f"{out['s_per_decision'] * 1e3:9.2f} ms/decision, {out['sims_per_s']:>13,.0f} sims/s")
        if iterations and batch in compare:
            states = reset(jax.random.split(jax.random.key(3), batch))
            its = sequential_iterations(search, step_fn, states, rollouts=rollouts, unroll=unroll)
            record["iterations"][name][str(batch)] = its
            line += (f"; loop iterations/decision {its['total']} (simulate {its['simulate']}, "
                     f"backward {its['backward']}, rollout {its['rollout']})")
        print(line, flush=True)
        save()
    for name, (search, _) in built.items():
        if time.perf_counter() - start > args.budget_s:
            record["skipped"].append(f"hlo:{name}")
            continue
        text = jax.jit(search).lower(jax.random.key(0), reset(jax.random.split(jax.random.key(0), 16))).compile()
        hlo = record["hlo"][name] = hlo_loops(text.as_text())
        loops = ", ".join(f"{loop['body_instructions']} ({loop['trip_count'] or '?'} iterations)"
                          for loop in hlo["model_loops"])
        print(f"  {name:<12} HLO (batch 16): {hlo['while_loops']} while loops, {hlo['rng_loops']} of them in "
              f"jax.random; the others' body instructions (trip count): {loops}", flush=True)
        save()
    record["elapsed_s"] = time.perf_counter() - start
    if record["skipped"]:
        print(f"  skipped (past --budget-s {args.budget_s}): {', '.join(record['skipped'])}", flush=True)
    save()
    print(summary_table(record), flush=True)
    if args.json:
        print(f"wrote {args.json}")
    return record


def summary_table(record: dict) -> str:
    """Markdown rows: batch | sims/s and ms per decision per variant."""
    names = list(record["points"])
    batches = sorted({int(b) for pts in record["points"].values() for b in pts})
    lines = ["| batch | " + " | ".join(f"{n}: sims/s (ms/decision)" for n in names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for b in batches:
        cells = []
        for n in names:
            p = record["points"][n].get(str(b))
            cells.append(f"{p['sims_per_s']:,.0f} ({p['s_per_decision'] * 1e3:.2f})" if p else "—")
        lines.append(f"| {b:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_arguments(p) -> None:
    """The options `speed.py plan --scaling` adds to `speed.py plan`'s."""
    p.add_argument("--scaling", action="store_true",
                   help="MCTS scaling instead: sequential loop iterations per decision and sims/s from batch 1 "
                        f"to 4,096 (CPU) or 16,384 (accelerator) (experiments/speed_scaling.py)")
    p.add_argument("--compare-batches", default=COMPARE_BATCHES,
                   help=f"--scaling: batches for the other rollout_unroll and the loop counts (default {COMPARE_BATCHES})")
    p.add_argument("--repeats", type=int, default=5, help="--scaling: timed calls per point, fastest taken (default 5)")
    p.add_argument("--iterations", action=argparse.BooleanOptionalAction, default=None,
                   help="--scaling: count loop iterations at the compare batches (default: on a CPU only; "
                        "the counts do not depend on the backend)")
    p.add_argument("--budget-s", type=float, default=240.0,
                   help="--scaling: start no new point after this many seconds (default 240)")


if __name__ == "__main__":
    raise SystemExit("run through: python experiments/speed.py plan --scaling")
