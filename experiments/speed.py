"""Speed benchmarks. Subcommands:

    python experiments/speed.py plan [--quick] [--json PATH]
    python experiments/speed.py plan --scaling [--json PATH]   (experiments/speed_scaling.py)

`plan`, in one run with the same settings (the paper's: 25 simulations, random
rollouts of up to 100 steps, discount 0.99, a fresh tree every real step):
  (a) mctx MCTS with the reference CWM of CartPole,
  (b) mctx MCTS with the gymnax oracle (`EnvSpec.oracle_step`),
  (c) the paper-style baseline: plain-Python UCT over a plain-Python CWM class
      (`experiments/python_mcts.py`),
at batch sizes (seeds) 1, 16 and 256, reporting simulations per second and
seconds per real step (compile time apart), the ratios a/b and a/c, and CEM on
Pendulum (reference CWM vs oracle) when Pendulum is registered. Runs unchanged
on CPU and GPU (whatever `jax.devices()` gives).
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

# --------------------------------------------------------------------------- helpers


def _timed_calls(fn, args, repeats: int) -> float:
    """Median wall-clock seconds of `repeats` calls of an already compiled fn."""
    import jax

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _planning_loop(spec, policy, batch: int, steps: int):
    """jit(fn)(keys [B]) running `steps` real steps of planning + env.step (auto-reset) per row.

    The project's episode loop (`planners.episode.rollout`) with gymnax's
    auto-reset, so every timed step plans from a live state.
    """
    import jax

    import planners

    env, params = spec.make_gymnax()

    def run(key):
        out = planners.rollout(env, params, policy, key, num_steps=steps, obs_fn=spec.flatten_obs,
                               action_fn=spec.to_gymnax_action, auto_reset=True)
        return out.reward.sum()

    return jax.jit(jax.vmap(run))


def measure_jax(spec, policy, *, batch: int, steps: int, repeats: int, sims_per_step: int) -> dict:
    """Compile and time `steps` real steps of planning for `batch` rows."""
    import jax

    keys = jax.random.split(jax.random.key(0), batch)
    fn = _planning_loop(spec, policy, batch, steps)
    start = time.perf_counter()
    compiled = fn.lower(keys).compile()
    compile_seconds = time.perf_counter() - start
    seconds = _timed_calls(compiled, (keys,), repeats)
    return {
        "batch": batch,
        "real_steps": steps,
        "compile_seconds": compile_seconds,
        "seconds": seconds,
        "s_per_real_step": seconds / steps,
        "sims_per_s": batch * steps * sims_per_step / seconds,
    }


def _fmt_rate(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def _fmt_ms(x: float | None) -> str:
    return "—" if x is None else f"{x * 1e3:.2f}"


# --------------------------------------------------------------------------- plan


def _cwm_step(spec, path: str):
    """The reference CWM as `plan --model FILE` runs it (`artifact`), or its Python loaded here (`python`)."""
    from cwm_jax import models, reference
    from cwm_jax.validate import loader

    if path == "python":
        return loader.load_reference(spec)
    step, result = models.sandboxed_step(reference.source(spec), spec)
    if step is None:
        raise SystemExit(f"error: the reference CWM was rejected: {result.error}")
    return step


def cmd_plan(args) -> int:
    import jax

    import planners
    from cwm_jax import envs

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.scaling:
        import speed_scaling

        speed_scaling.run(args)
        return 0
    import python_mcts

    def say(text: str = "") -> None:
        print(text, flush=True)

    quick = args.quick
    batches = [int(b) for b in args.batches.split(",")] if args.batches else ([1, 16] if quick else [1, 16, 256])
    sims, depth, discount = args.simulations, args.rollout_depth, 0.99
    steps = args.steps or (20 if quick else 100)
    py_steps = args.python_steps or (10 if quick else 100)
    repeats = 1 if quick else 5
    device = str(jax.devices()[0])
    say(f"device: {device} ({jax.default_backend()}); jax {jax.__version__}")
    say(
        f"MCTS settings (a, b, c): {sims} simulations, random rollouts <= {depth} steps, discount {discount}, "
        f"fresh tree every real step; mctx policy muzero (greedy on visits)"
    )
    say(f"timing {steps} real steps per batch (median of {repeats}); compile time reported apart")

    spec = envs.env_spec("gymnax/CartPole")
    models = {"cwm": _cwm_step(spec, args.cwm), "oracle": spec.oracle_step}
    say(f"cwm: the reference CWM {'as the sandbox-scored artifact plan runs' if args.cwm == 'artifact' else 'as in-process Python'}")
    record: dict = {
        "device": device,
        "backend": jax.default_backend(),
        "settings": {
            "env": "gymnax/CartPole",
            "simulations": sims,
            "rollout_depth": depth,
            "discount": discount,
            "policy": "muzero",
            "real_steps": steps,
            "python_real_steps_per_row": py_steps,
            "repeats": repeats,
            "quick": quick,
        },
        "mcts": {"cwm": {}, "oracle": {}, "python": {}},
    }
    for name, step_fn in models.items():
        plan = planners.make_mcts_planner(
            step_fn, num_actions=spec.num_actions, num_simulations=sims, rollout_depth=depth, discount=discount
        )
        for batch in batches:
            say(f"  mctx {name:<6} batch {batch:>4}: compiling ...")
            out = measure_jax(spec, plan, batch=batch, steps=steps, repeats=repeats, sims_per_step=sims)
            record["mcts"][name][str(batch)] = out
            say(
                f"  mctx {name:<6} batch {batch:>4}: compile {out['compile_seconds']:.1f} s, "
                f"{out['s_per_real_step'] * 1e3:.2f} ms per real step, {out['sims_per_s']:,.0f} sims/s"
            )
    for batch in batches:
        if batch > 16:
            record["mcts"]["python"][str(batch)] = None
            say(f"  python        batch {batch:>4}: skipped (sequential: same sims/s as batch 16, {batch}x the time per step)")
            continue
        out = python_mcts.run(batch, py_steps, num_simulations=sims, rollout_depth=depth, discount=discount)
        out["batch"] = batch
        record["mcts"]["python"][str(batch)] = out
        say(
            f"  python        batch {batch:>4}: {out['s_per_real_step'] * 1e3:.2f} ms per real step, "
            f"{out['sims_per_s']:,.0f} sims/s"
        )

    # The Python baseline is sequential: its sims/s does not depend on the
    # batch, so skipped batches are compared with the largest measured one.
    measured = [record["mcts"]["python"][str(b)] for b in batches if record["mcts"]["python"].get(str(b))]
    python_rate = measured[-1]["sims_per_s"] if measured else None
    ratios = {"by_batch": {}}
    for batch in batches:
        a = record["mcts"]["cwm"][str(batch)]["sims_per_s"]
        b = record["mcts"]["oracle"][str(batch)]["sims_per_s"]
        c = record["mcts"]["python"].get(str(batch))
        ratios["by_batch"][str(batch)] = {
            "cwm_vs_oracle": a / b,
            "cwm_vs_python": a / c["sims_per_s"] if c else None,
            "cwm_vs_python_estimate": a / (c["sims_per_s"] if c else python_rate) if python_rate else None,
        }
    ref_batch = "16" if "16" in ratios["by_batch"] else str(batches[0])
    ratios["batch"] = int(ref_batch)
    ratios["cwm_vs_oracle"] = ratios["by_batch"][ref_batch]["cwm_vs_oracle"]
    ratios["cwm_vs_python"] = ratios["by_batch"][ref_batch]["cwm_vs_python"]
    record["ratios"] = ratios

    say()
    say(f"MCTS on CartPole, {sims} sims, rollouts <= {depth}: sims/s (ms per real step, whole batch)")
    say(f"  {'batch':>5}  {'(a) mctx+CWM':>22}  {'(b) mctx+oracle':>22}  {'(c) python':>22}  {'a/b':>5}  {'a/c':>8}")
    for batch in batches:
        a = record["mcts"]["cwm"][str(batch)]
        b = record["mcts"]["oracle"][str(batch)]
        c = record["mcts"]["python"].get(str(batch))
        r = ratios["by_batch"][str(batch)]
        cell = lambda o: f"{_fmt_rate(o['sims_per_s'])} ({_fmt_ms(o['s_per_real_step'])})" if o else "—"  # noqa: E731
        if r["cwm_vs_python"] is not None:
            ac = f"{r['cwm_vs_python']:.1f}"
        elif r["cwm_vs_python_estimate"] is not None:
            ac = f"~{r['cwm_vs_python_estimate']:.0f} est"
        else:
            ac = "—"
        say(f"  {batch:>5}  {cell(a):>22}  {cell(b):>22}  {cell(c):>22}  {r['cwm_vs_oracle']:>5.2f}  {ac:>8}")
    compile_a = ", ".join(f"{record['mcts']['cwm'][str(b)]['compile_seconds']:.1f}" for b in batches)
    compile_b = ", ".join(f"{record['mcts']['oracle'][str(b)]['compile_seconds']:.1f}" for b in batches)
    say(f"  compile seconds per batch size: (a) {compile_a}; (b) {compile_b}; (c) none")
    cvp = ratios["cwm_vs_python"]
    say(
        f"  ratios at batch {ref_batch}: cwm_vs_oracle = {ratios['cwm_vs_oracle']:.2f}, "
        f"cwm_vs_python = {'—' if cvp is None else f'{cvp:.1f}'}"
    )

    cem_batches = [int(b) for b in args.cem_batches.split(",")]
    record["cem"] = _cem_section(args, cem_batches, say)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        say(f"wrote {args.json}")
    return 0


def _cem_section(args, batches, say) -> dict | None:
    """CEM on Pendulum: reference CWM vs oracle, when Pendulum is registered."""
    import planners
    from cwm_jax import envs

    if "gymnax/Pendulum" not in envs.names():
        say("\nCEM on Pendulum: skipped (Pendulum is not registered)")
        return None
    spec = envs.env_spec("gymnax/Pendulum")
    if args.quick:
        cfg = {"horizon": 30, "iterations": 5, "num_samples": 200, "num_elites": 20}
        steps = 3
    else:
        cfg = {"horizon": 100, "iterations": 20, "num_samples": 1000, "num_elites": 100}
        steps = 3
    seqs = cfg["iterations"] * cfg["num_samples"]
    say(
        f"\nCEM on Pendulum (replanning every step): horizon {cfg['horizon']}, {cfg['iterations']} iterations, "
        f"{cfg['num_samples']} samples, {cfg['num_elites']} elites; timing {steps} real steps"
    )
    out: dict = {"settings": {**cfg, "real_steps": steps}, "cwm": {}, "oracle": {}}
    models = {"cwm": _cwm_step(spec, args.cwm), "oracle": spec.oracle_step}
    for name, step_fn in models.items():
        plan = planners.make_cem_planner(
            step_fn, action_dim=spec.action_dim, action_low=spec.action_low, action_high=spec.action_high, **cfg
        )
        for batch in batches:
            res = measure_jax(spec, plan, batch=batch, steps=steps, repeats=1, sims_per_step=seqs)
            res["sequences_per_s"] = res.pop("sims_per_s")
            res["model_steps_per_s"] = res["sequences_per_s"] * cfg["horizon"]
            out[name][str(batch)] = res
            say(
                f"  cem {name:<6} batch {batch:>4}: compile {res['compile_seconds']:.1f} s, "
                f"{res['s_per_real_step'] * 1e3:.1f} ms per real step, "
                f"{res['model_steps_per_s']:,.0f} model steps/s"
            )
    out["ratios"] = {
        str(b): out["cwm"][str(b)]["model_steps_per_s"] / out["oracle"][str(b)]["model_steps_per_s"] for b in batches
    }
    say("  cwm_vs_oracle by batch: " + ", ".join(f"{b}: {r:.2f}" for b, r in out["ratios"].items()))
    return out


def add_plan_command(subparsers) -> None:
    p = subparsers.add_parser("plan", help="planning speed: mctx+CWM vs mctx+oracle vs plain-Python MCTS; CEM")
    p.add_argument("--quick", action="store_true", help="smaller settings (batches 1,16; fewer steps; 1 repeat)")
    p.add_argument("--json", metavar="PATH", help="write all figures as JSON (ratios under 'ratios')")
    p.add_argument("--batches", help="comma-separated batch sizes (default 1,16,256; --quick 1,16)")
    p.add_argument("--steps", type=int, help="real steps timed per batch (default 100; --quick 20)")
    p.add_argument("--python-steps", type=int, help="real steps per row for the Python baseline (default 100)")
    p.add_argument(
        "--cem-batches", default="1,16",
        help="batch sizes for CEM on Pendulum (default 1,16: the paper's CEM is 2M model steps per real step)",
    )
    p.add_argument("--cwm", choices=("artifact", "python"), default="artifact",
                   help="how the CWM runs: the sandbox's exported artifact, as plan runs a model file (default), "
                        "or its Python loaded in this process")
    p.add_argument("--simulations", type=int, default=25, help="MCTS simulations per real step (default 25)")
    p.add_argument("--rollout-depth", type=int, default=100, help="random rollout length (default 100)")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import speed_scaling

    speed_scaling.add_arguments(p)
    p.set_defaults(func=cmd_plan)


# --------------------------------------------------------------------------- CLI

def module_command(name: str, module_name: str, help: str) -> Callable:
    """A subcommand backed by a benchmark module with `add_arguments(parser)` and `run(args)`."""

    def add(subparsers) -> None:
        module = importlib.import_module(module_name)
        p = subparsers.add_parser(name, help=help, description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)

        def run(args) -> int:
            module.run(args)
            return 0

        p.set_defaults(func=run)

    return add


# Each entry registers one subcommand on the subparsers object and sets
# `func` (args -> exit status).
COMMANDS: list[Callable] = [
    module_command("check", "speed_check", "checking a CWM: one vmapped call vs a Python loop"),
    add_plan_command,
    module_command("sandbox", "speed_sandbox", "scoring latency: warm sandbox worker vs in-process"),
    module_command("synth", "speed_synth", "GIF-MCTS wall-clock at several concurrency levels"),
    module_command("fit", "speed_fit", "fitting the constants of a CWM: seconds per program and environment"),
    module_command("fit-search", "speed_fit_search", "GIF-MCTS with and without fit on the unknown-constants envs"),
    module_command("value", "speed_value", "MCTS: random-rollout leaf values vs a learned value and prior"),
    module_command("evaluate", "speed_evaluate", "planners.evaluate: 1st call (compiles) vs 2nd call (reuses it)"),
    module_command("batch", "speed_batch", "evaluate and rollout loops at thousands of seeds"),
    module_command("returns", "speed_returns", "MCTS variants: mean return over seeds and time per decision"),
    module_command("gymnasium", "speed_gymnasium", "planning with a CWM vs with the real gymnasium env as model"),
    module_command("chance", "speed_chance", "stochastic vs deterministic MCTS on SlipperyGrid: simulations/s"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speed.py", description="cwm-jax speed benchmarks")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
