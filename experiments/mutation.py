"""Mutation testing of the core modules with cosmic-ray (a developer command, not CI).

    pip install -e ".[mutation]"      # cosmic-ray >= 8.7
    python experiments/mutation.py accuracy mcts --rev <commit> --json runs/before.json
    python experiments/mutation.py accuracy mcts --rerun-survivors runs/before.json --json runs/after.json

Targets: accuracy, mcts, validator (with contract.py), gif_mcts (see TARGETS).

For each target, cosmic-ray's own engine (`cosmic_ray.mutating.mutate_and_test`)
applies one mutation at a time to a module and runs that target's fast test
files; a mutant is killed when the tests fail (or time out), and survives
when they pass. Everything runs in a throwaway copy of the working tree (the
files `git ls-files` lists, tracked and untracked, or the commit `--rev`),
never in the tree itself.

Sampling, to fit a 2-core machine: cosmic-ray proposes up to ~12 operators at
the same source position (`+` -> `-`, `*`, `/`, `//`, `%`, `**`, `>>`, ...),
most of them crashing at once. We keep ONE operator per source position
(chosen with `--seed`), then a random sample of `--max-mutants` positions.
The kill rate is therefore over positions, not over all operator variants.
Same seed and same source give the same sample, so before/after figures are
comparable while the module is unchanged.

Prints each surviving mutant's diff; `--json` writes every result.
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# target -> (modules to mutate, fast test files or node ids that cover them).
# Test files missing in the tree are left out (and reported), so the same
# command measures a branch before and after a test file is added.
TARGETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "accuracy": (
        ("cwm_jax/score/accuracy.py",),
        ("tests/cwm_jax/score/test_accuracy.py", "tests/cwm_jax/score/test_scoring_formulas.py"),
    ),
    "mcts": (
        ("planners/mcts.py",),
        (
            "tests/planners/test_planner_contracts.py",  # first: cheap, and -x stops at the first failure
            # The MCTS tests of test_planners.py; its oracle-parity and
            # evaluation tests take a minute and add little here.
            "tests/planners/test_planners.py::test_no_reward_below_a_terminal_node",
            "tests/planners/test_planners.py::test_terminal_nodes_are_absorbing_with_a_value_fn",
            "tests/planners/test_planners.py::test_action_mask_applies_inside_the_tree",
            "tests/planners/test_planners.py::test_prior_fn_steers_the_search",
            "tests/planners/test_planners.py::test_planner_validates_its_settings",
        ),
    ),
    "validator": (
        (
            "cwm_jax/validate/validator.py",
            "cwm_jax/validate/expressions.py",
            "cwm_jax/validate/rules.py",
            "cwm_jax/validate/constants.py",
            "cwm_jax/validate/contract.py",
        ),
        ("tests/cwm_jax/validate/test_validator.py", "tests/cwm_jax/validate/test_validator_rules.py"),
    ),
    "gif_mcts": (
        ("synth/search/gif_mcts.py", "synth/search/gif_mcts_values.py", "synth/search/node.py"),
        # The search's unit tests use a fake scorer (no server, no JAX
        # compile); the end-to-end test_synth.py takes minutes per mutant.
        ("tests/synth/search/test_synth_search.py",),
    ),
}


def copy_tree(dest: Path, rev: str | None = None) -> None:
    """Copies the files git knows of (tracked, and untracked but not ignored) to `dest`.

    With `rev`, copies that commit instead (e.g. to measure "before").
    """
    if rev is not None:
        archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def sample_work_items(modules: tuple[str, ...], *, max_mutants: int, seed: int) -> list:
    """One cosmic-ray mutation per source position, then `max_mutants` positions at random."""
    from cosmic_ray.commands.init import _all_work_items

    by_position = collections.defaultdict(list)
    for item in _all_work_items([Path(m) for m in modules], {}):
        mutation = item.mutations[0]
        by_position[(mutation.module_path, tuple(mutation.start_pos))].append(item)
    rng = random.Random(seed)
    chosen = [rng.choice(items) for _, items in sorted(by_position.items())]
    if max_mutants < len(chosen):
        chosen = rng.sample(chosen, max_mutants)
    chosen.sort(key=lambda item: (item.mutations[0].module_path, tuple(item.mutations[0].start_pos)))
    return chosen, len(by_position)


def annotation_spans(module: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) (line, column) of every annotation, if the module postpones them.

    Under `from __future__ import annotations` annotations are never
    evaluated, so a mutant inside one (`int | None` -> `int - None`) cannot
    change behaviour: it is reported as equivalent and not run.
    """
    tree = ast.parse(Path(module).read_text())
    postponed = any(
        isinstance(node, ast.ImportFrom) and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not postponed:
        return []
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            annotation = node.annotation
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            annotation = node.returns
        elif isinstance(node, ast.AnnAssign) and not isinstance(node.target, ast.Name):
            annotation = None  # attribute annotations may be evaluated
        elif isinstance(node, ast.AnnAssign):
            annotation = node.annotation
        else:
            continue
        if annotation is not None:
            spans.append(((annotation.lineno, annotation.col_offset),
                          (annotation.end_lineno, annotation.end_col_offset)))
    return spans


def _key(module, operator: str, occurrence: int) -> tuple[str, str, int]:
    return (str(module), operator, int(occurrence))


def run_target(name: str, *, max_mutants: int, seed: int, timeout_factor: float, earlier: dict | None = None) -> dict:
    """Runs a target's sample; with `earlier` (a previous summary of the same
    target on the same module source), mutants it killed count as killed
    without a rerun: tests only added since cannot revive them."""
    from cosmic_ray.mutating import mutate_and_test
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    modules, tests = TARGETS[name]
    present = [t for t in tests if Path(t.split("::")[0]).exists()]
    missing = sorted({t.split("::")[0] for t in tests} - {t.split("::")[0] for t in present})
    command = f"{sys.executable} -m pytest -q -x -p no:cacheprovider {' '.join(present)}"
    start = time.perf_counter()
    baseline = subprocess.run(command.split(), capture_output=True, text=True)
    baseline_seconds = time.perf_counter() - start
    if baseline.returncode != 0:
        raise SystemExit(f"{name}: the tests fail without any mutation:\n{baseline.stdout[-2000:]}")
    timeout = max(30.0, timeout_factor * baseline_seconds)
    items, positions = sample_work_items(modules, max_mutants=max_mutants, seed=seed)
    print(f"{name}: {positions} mutable positions in {', '.join(modules)}; running {len(items)} "
          f"(tests {baseline_seconds:.0f} s unmutated, timeout {timeout:.0f} s)", flush=True)
    if missing:
        print(f"  test files not in this tree (left out): {', '.join(missing)}", flush=True)
    killed_before = {
        _key(r["module"], r["operator"], r["occurrence"]) for r in (earlier or {}).get("results", ())
        if r["outcome"] == "killed"
    }
    annotations = {module: annotation_spans(module) for module in modules}
    results = []
    for i, item in enumerate(items, 1):
        mutation = item.mutations[0]
        key = _key(mutation.module_path, mutation.operator_name, mutation.occurrence)
        start = tuple(mutation.start_pos)
        if any(a <= start < b for a, b in annotations[str(mutation.module_path)]):
            print(f"  [{i}/{len(items)}] equivalent (in an annotation) {mutation.module_path}:{start[0]}")
            results.append({"module": key[0], "line": start[0], "operator": key[1], "occurrence": key[2],
                            "outcome": "equivalent", "diff": "(inside a postponed annotation)"})
            continue
        if key in killed_before:
            print(f"  [{i}/{len(items)}] killed   (in the earlier run) {mutation.module_path}:{mutation.start_pos[0]}")
            results.append({"module": key[0], "line": mutation.start_pos[0], "operator": key[1],
                            "occurrence": key[2], "outcome": "killed", "diff": "(killed in the earlier run)"})
            continue
        result = mutate_and_test(item.mutations, command, timeout)
        if result.worker_outcome == WorkerOutcome.NO_TEST:
            continue
        if result.worker_outcome == WorkerOutcome.EXCEPTION:
            outcome = "error"
        else:
            outcome = "killed" if result.test_outcome == TestOutcome.KILLED else "survived"
        where = f"{mutation.module_path}:{mutation.start_pos[0]}"
        print(f"  [{i}/{len(items)}] {outcome:8} {where} {mutation.operator_name.split('/')[-1]}", flush=True)
        results.append({
            "module": str(mutation.module_path),
            "line": mutation.start_pos[0],
            "operator": mutation.operator_name,
            "occurrence": mutation.occurrence,
            "outcome": outcome,
            "diff": result.diff,
        })
    killed = sum(r["outcome"] == "killed" for r in results)
    tested = sum(r["outcome"] in ("killed", "survived") for r in results)  # equivalent ones left out
    return {
        "target": name,
        "modules": list(modules),
        "tests": present,
        "missing_tests": missing,
        "positions": positions,
        "sampled": len(items),
        "tested": tested,
        "killed": killed,
        "kill_rate": killed / tested if tested else None,
        "baseline_test_seconds": baseline_seconds,
        "results": results,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="+", choices=sorted(TARGETS))
    parser.add_argument("--max-mutants", type=int, default=40, help="positions sampled per target (default 40)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--timeout-factor", type=float, default=3.0,
                        help="a mutant's tests time out (= killed) after this many times the unmutated run")
    parser.add_argument("--rev", help="mutate and test this commit instead of the working tree")
    parser.add_argument("--rerun-survivors", metavar="JSON",
                        help="an earlier --json of the same targets and seed: rerun only its survivors")
    parser.add_argument("--json", metavar="PATH", help="write all results as JSON")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import cosmic_ray  # noqa: F401
    except ImportError:
        print('error: cosmic-ray is not installed: pip install "cosmic-ray>=8.7"', file=sys.stderr)
        return 2
    json_path = Path(args.json).resolve() if args.json else None
    earlier = {}
    if args.rerun_survivors:
        earlier = {s["target"]: s for s in json.loads(Path(args.rerun_survivors).read_text())}
    summaries = []
    with tempfile.TemporaryDirectory(prefix="cwm-mutation-") as tmp:
        copy_tree(Path(tmp), args.rev)
        os.chdir(tmp)
        # Compile time dominates the test run; XLA's optimisations are not what is
        # tested here, and a persistent cache lets each mutant reuse every
        # compiled function its mutation does not touch.
        os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(Path(tmp) / "jax-cache")
        os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
        os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
        for name in args.targets:
            summaries.append(run_target(name, max_mutants=args.max_mutants, seed=args.seed,
                                        timeout_factor=args.timeout_factor, earlier=earlier.get(name)))
    print()
    for s in summaries:
        rate = "n/a" if s["kill_rate"] is None else f"{100 * s['kill_rate']:.0f}%"
        equivalent = sum(r["outcome"] == "equivalent" for r in s["results"])
        print(f"{s['target']}: killed {s['killed']}/{s['tested']} = {rate} "
              f"(sample of {s['sampled']} of {s['positions']} positions; {equivalent} in annotations left out)")
        for r in s["results"]:
            if r["outcome"] in ("survived", "error"):
                print(f"--- {r['outcome']}: {r['module']}:{r['line']} {r['operator']}\n{r['diff']}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summaries, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
