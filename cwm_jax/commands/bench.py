"""The benchmark: methods x environments x seeds -> the paper's tables (synth/bench/).

    cwm-jax bench --methods reference --seeds 1          # offline upper bound
    cwm-jax bench --envs discrete --methods gif-mcts,worldcoder --seeds 3 \\
        --budget 10 --base-url http://localhost:8000/v1 --model NAME --concurrency 4 --out runs/bench
    cwm-jax bench --out runs/bench --resume              # after a kill: repeats nothing
    cwm-jax bench --replay runs/bench --out runs/again   # zero requests
    cwm-jax bench ... --ray local                        # tasks as Ray tasks (--ray auto: a cluster)
    (or: python experiments/benchmark.py ...)

Methods are separated by commas; a method may carry variant flags, e.g.
--methods "gif-mcts,gif-mcts --no-fix". Writes results.md, results.csv,
results.json, aggregates.json and plots to --out and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from cwm_jax import envs
from cwm_jax.commands import common as command
from cwm_jax.commands import outputs
from cwm_jax.errors import UsageError
from cwm_jax.commands.planner_options import add_planner_arguments, check_options, given_options
from synth.bench.config import BenchConfig
from synth.bench.methods import METHOD_KINDS, parse_method

__all__ = ["ENV_GROUPS", "add_arguments", "all_envs", "config_from_args", "resolve_envs", "run"]

ENV_GROUPS = ("all", "discrete", "continuous", "unknown", "novel", "novel-chance", "cwmb")


def all_envs(kind: str = "all") -> tuple[str, ...]:
    """Registered env ids: "all", "discrete" or "continuous" (the default envs), "unknown"
    (the "-unknown" variants, whose constants have to be learned from the data), or "novel"
    (generated worlds, seeds 0-4 of each family, whose rules have to be learned from the data), "novel-chance"
    (seeds 0-4 of the generated grids whose moves slip) or "cwmb" (the paper's 18)."""
    if kind in ("novel", "novel-chance"):
        from cwm_jax.envs import novel

        return novel.bench_ids() if kind == "novel" else novel.chance_ids()
    if kind == "cwmb":  # the paper's 18 gymnasium environments (cwm_jax/envs/cwmb.py)
        from cwm_jax.envs import cwmb

        return cwmb.bench_ids()
    specs = list(envs.VARIANT_SPECS if kind == "unknown" else envs.SPECS)
    if kind == "discrete":
        specs = [s for s in specs if s.discrete]
    elif kind == "continuous":
        specs = [s for s in specs if not s.discrete]
    return tuple(f"gymnax/{s.name}" for s in specs)


def resolve_envs(names: Sequence[str]) -> tuple[str, ...]:
    """Canonical ids of a list that may hold the groups of ENV_GROUPS; UnknownEnvError if one is unknown."""
    chosen: list[str] = []
    for name in names:
        ids = all_envs(name) if name in ENV_GROUPS else (envs.make(name).id,)
        chosen += [i for i in ids if i not in chosen]
    return tuple(chosen)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cwm-jax bench` (and `python experiments/benchmark.py`)."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--envs", default="all",
                        help="comma-separated env ids, or all|discrete|continuous (the default envs), unknown "
                             "(the -unknown variants), novel (generated worlds: Novel-Physics-0..4, "
                             "Novel-Grid-0..4), novel-chance (Novel-Chance-0..4: grids whose moves slip) or cwmb "
                             "(the paper's 18 gymnasium environments) (default: all)")
    parser.add_argument("--methods", default="gif-mcts,worldcoder,zero-shot",
                        help=f"comma-separated: {', '.join(METHOD_KINDS)}, with variant "
                             "flags such as 'gif-mcts --no-fix' or 'gif-mcts --no-fit' (the synthesis methods fit "
                             "constants unless --no-fit) (default: gif-mcts,worldcoder,zero-shot)")
    parser.add_argument("--seeds", type=int, default=1, help="search seeds per env and method (default: 1)")
    parser.add_argument("--budget", type=int, default=10, help="LLM calls per task (default: 10)")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL or OpenAI)")
    parser.add_argument("--model", help="model name as the server knows it (needed by LLM methods)")
    parser.add_argument("--api-key", help="API key (default: $OPENAI_API_KEY; local servers need none)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request (default: 120)")
    parser.add_argument("--description", choices=("full", "docs"), default="full",
                        help="what the prompts say about the env: every constant (full) or the docs level (docs)")
    parser.add_argument("--value", choices=("paper", "strict"), default="paper",
                        help="search value of the synthesis methods: the paper code's reward-weighted accuracy, or "
                             "strict accuracy (all of state, reward and done right) (default: paper)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: 1.0)")
    parser.add_argument("--max-tokens", type=int, default=4096,
                        help="completion limit per call, hidden reasoning tokens included (default: 4096, as "
                             "`cwm-jax synth`; the paper's 1500 cuts off an explanation plus an RK4 program)")
    parser.add_argument("--prices", type=float, nargs=2, metavar=("IN", "OUT"),
                        help="dollars per million prompt and completion tokens, to count cost")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="LLM calls in flight over the whole benchmark, through one shared client; "
                             "also the tasks in flight (default: 1)")
    parser.add_argument("--task-concurrency", type=int, default=1,
                        help="LLM calls in flight within one task (default: 1)")
    parser.add_argument("--out", default="runs/benchmark", help="output directory (default: runs/benchmark)")
    parser.add_argument("--resume", action="store_true", help="continue the benchmark in --out")
    parser.add_argument("--replay", metavar="DIR", help="re-run the benchmark recorded in DIR from its caches "
                        "(its configuration; zero requests)")
    parser.add_argument("--plan-seeds", type=int, default=16,
                        help="planning episodes per policy, one per seed (default: 16; 0: no planning)")
    parser.add_argument("--devices", type=int, help="devices to split the planning seeds over (default: all)")
    add_planner_arguments(parser, planner=False)  # as in cwm-jax plan; each env reads its planner's options
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="run the tasks as Ray tasks: local (a Ray instance on this machine), auto (the cluster "
                             "`ray start` made) or ray://HOST:10001; every node must see --out at the same path "
                             "(needs the [ray] extra)")
    parser.add_argument("--ray-gpus", type=float, default=0.0,
                        help="GPUs per Ray task for planning, a fraction to share one (default: 0: planning on CPU)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """The benchmark's configuration: recorded (--replay, --resume) or from the options; UsageError if bad."""
    if args.replay:
        recorded = Path(args.replay) / "benchmark.json"
        if not recorded.exists():
            raise UsageError(f"--replay {args.replay}: no benchmark.json there (not a benchmark output directory)")
        if Path(args.replay).resolve() == Path(args.out).resolve():
            raise UsageError("--replay DIR and --out must differ (the replay writes a new benchmark)")
        return BenchConfig.from_json(json.loads(recorded.read_text()))
    recorded = Path(args.out) / "benchmark.json"
    if args.resume and recorded.exists():  # the recorded grid; only the key is not stored
        return dataclasses.replace(BenchConfig.from_json(json.loads(recorded.read_text())), api_key=args.api_key)
    if args.seeds < 1 or args.budget < 1 or args.concurrency < 1 or args.task_concurrency < 1:
        raise UsageError("--seeds, --budget, --concurrency and --task-concurrency must be at least 1")
    if args.plan_seeds < 0:
        raise UsageError("--plan-seeds must be >= 0")
    methods = tuple(parse_method(m) for m in args.methods.split(",") if m.strip())
    if not methods:
        raise UsageError("--methods is empty")
    plan = given_options(args)
    check_options(plan)
    return BenchConfig(
        envs=resolve_envs([e.strip() for e in args.envs.split(",") if e.strip()]), methods=methods,
        seeds=tuple(range(args.seeds)), budget=args.budget, model=args.model, base_url=args.base_url,
        api_key=args.api_key, timeout=args.timeout, description=args.description, value=args.value,
        temperature=args.temperature, max_tokens=args.max_tokens,
        prices=tuple(args.prices) if args.prices else None, concurrency=args.concurrency,
        task_concurrency=args.task_concurrency, plan_seeds=args.plan_seeds, plan=plan, devices=args.devices)


def run(args: argparse.Namespace) -> int:
    """`cwm-jax bench`; the exit status (cwm_jax/commands/common.py). Finished tasks are kept whatever happens."""
    from synth.bench.benchmark import run_benchmark
    from synth.bench.report import write_results

    def say(text: str) -> None:
        print(text, flush=True)

    config = config_from_args(args)
    outputs.check_dirs(args.out)
    if args.ray_gpus < 0:
        raise UsageError("--ray-gpus must be >= 0")
    try:
        with command.progress("benchmark running (a line per finished task)", every=30.0):
            records = run_benchmark(config, args.out, resume=args.resume, replay_from=args.replay, say=say,
                                    ray_address=args.ray, ray_gpus=args.ray_gpus)
    except RuntimeError as exc:
        command.error(str(exc))
        return command.EXIT_FAILED
    except Exception as exc:
        llm = sys.modules.get("synth.llm.client")  # imported only when an LLM method ran
        if llm is None or not isinstance(exc, llm.LLMError):
            raise
        command.error(f"the LLM endpoint failed: {exc} (finished tasks are kept; rerun with --resume)")
        return command.EXIT_ENDPOINT
    table = write_results(records, args.out, config=config.to_json(), plots=not args.no_plots)
    print("\n" + table)
    plots = [name for name in ("accuracy.png", "normalized_return.png", "accuracy_vs_calls.png")
             if not args.no_plots and (Path(args.out) / name).exists()]
    print(f"wrote {Path(args.out) / 'results.md'}, " + ", ".join(["results.csv", "results.json", "aggregates.json",
                                                                  *plots]))
    return command.EXIT_OK
