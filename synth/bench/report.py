"""The benchmark's tables and plots: aggregates over seeds, results.md/csv/json, PNGs.

Aggregates follow the paper (Dainese et al. 2024, Tables 2, 10, 11):
- per env and method: mean ± standard error over seeds (± only with 2+ seeds);
- per method, discrete and continuous averages: the mean of the per-env means,
  ± the standard error across those envs (with one seed this is the paper's
  "error of the mean" over environments). Normalized return averages leave
  out envs where it is N/A (the oracle does not beat random), as the paper
  does for MountainCar and Acrobot; a task without a working program counts
  as 0 accuracy and 0 normalized return.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cwm_jax.envs import cwmb
from synth.bench.config import Task
from synth.bench.paper_figures import cwmb_section
from synth.bench.methods import parse_method

__all__ = ["averages", "describe", "markdown", "mean_se", "per_env", "write_plots", "write_results"]

METRICS = ("train_accuracy", "test_accuracy", "test_weighted_accuracy", "test_strict_accuracy", "normalized_return",
           "random_return", "oracle_return", "plan_seconds", "calls", "tokens", "cost", "fits", "fit_seconds",
           "wall_seconds")
CSV_FIELDS = ("env", "method", "seed", "budget", "value", "discrete", "has_program", "train_accuracy", "test_accuracy",
              "train_weighted_accuracy", "test_weighted_accuracy", "train_strict_accuracy", "test_strict_accuracy",
              "normalized_return", "model_return", "random_return", "oracle_return", "plan_seeds", "planner", "calls",
              "failed_calls", "tokens", "prompt_tokens", "completion_tokens", "cost", "http_requests", "stop_reason",
              "fits", "fit_seconds", "synth_seconds", "score_seconds", "plan_seconds", "wall_seconds", "error", "note")


def mean_se(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and standard error of the non-None values ((None, None) if none; SE None for one value)."""
    data = np.asarray([v for v in values if v is not None], np.float64)
    if data.size == 0:
        return None, None
    if data.size == 1:
        return float(data[0]), None
    return float(data.mean()), float(data.std(ddof=1) / math.sqrt(data.size))


def _ordered(items) -> list:
    return list(dict.fromkeys(items))


def per_env(records: list[dict]) -> list[dict]:
    """One row per (env, method): mean and SE over seeds of every metric."""
    rows = []
    for env in _ordered(r["env"] for r in records):
        for method in _ordered(r["method"] for r in records):
            group = [r for r in records if r["env"] == env and r["method"] == method]
            if not group:
                continue
            row = {"env": env, "method": method, "discrete": group[0]["discrete"], "seeds": len(group)}
            for metric in METRICS:
                row[metric], row[f"{metric}_se"] = mean_se([r.get(metric) for r in group])
            row["note"] = next((r["note"] for r in group if r.get("note")), "")
            rows.append(row)
    return rows


def averages(rows: list[dict]) -> list[dict]:
    """Per method and action kind: mean of per-env means ± SE across envs."""
    out = []
    for method in _ordered(r["method"] for r in rows):
        for discrete, kind in ((True, "discrete"), (False, "continuous")):
            group = [r for r in rows if r["method"] == method and r["discrete"] == discrete]
            if not group:
                continue
            avg = {"method": method, "kind": kind, "envs": len(group)}
            for metric in METRICS:
                avg[metric], avg[f"{metric}_se"] = mean_se([r[metric] for r in group])
            avg["normalized_return_envs"] = sum(r["normalized_return"] is not None for r in group)
            out.append(avg)
    return out


def _fmt(value, se=None, digits: int = 2) -> str:
    if value is None:
        return "N/A"
    text = f"{value:.{digits}f}"
    return text if se is None else f"{text}±{se:.{digits}f}"


def markdown(records: list[dict], config: dict | None = None) -> str:
    """results.md: per-env accuracy / normalized return, averages, and cost."""
    rows, avgs = per_env(records), averages(per_env(records))
    methods = _ordered(r["method"] for r in records)
    lines = []
    if config:
        seeds = len(config.get("seeds", ()))
        llm = (f"budget {config.get('budget')} calls, model {config.get('model')}, "
               f"search value {config.get('value', 'paper')}" if config.get("model") else "no LLM")
        lines += [f"{seeds} seed(s), {llm}; planning over {config.get('plan_seeds')} seeds.", ""]
    lines += ["Test accuracy / normalized return (mean±SE over seeds; train accuracy in results.csv)", "",
              "| env | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for env in _ordered(r["env"] for r in rows):
        cells = []
        for method in methods:
            row = next((r for r in rows if r["env"] == env and r["method"] == method), None)
            cells.append("-" if row is None else f"{_fmt(row['test_accuracy'], row['test_accuracy_se'])} / "
                         f"{_fmt(row['normalized_return'], row['normalized_return_se'])}")
        lines.append(f"| {env.split('/')[-1]} | " + " | ".join(cells) + " |")
    lines += ["", "Averages (mean of per-env means ± SE across envs; the paper's Table 2)", "",
              "| method | kind | envs | train acc | test acc | weighted test acc | normalized return | calls "
              "| tokens | cost $ | fits | fit s | wall s |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for a in avgs:
        norm = _fmt(a["normalized_return"], a["normalized_return_se"])
        lines.append(
            f"| {a['method']} | {a['kind']} | {a['envs']} | {_fmt(a['train_accuracy'], a['train_accuracy_se'])} "
            f"| {_fmt(a['test_accuracy'], a['test_accuracy_se'])} "
            f"| {_fmt(a['test_weighted_accuracy'], a['test_weighted_accuracy_se'])} "
            f"| {norm} ({a['normalized_return_envs']} envs) | {_fmt(a['calls'], digits=1)} "
            f"| {_fmt(a['tokens'], digits=0)} | {_fmt(a['cost'], digits=4)} "
            f"| {_fmt(a['fits'], digits=1)} | {_fmt(a['fit_seconds'], digits=1)} | {_fmt(a['wall_seconds'], digits=1)} |")
    if any(r["env"] in cwmb.bench_ids() for r in rows):
        lines += cwmb_section([r for r in rows if r["env"] in cwmb.bench_ids()], _fmt)
    return "\n".join(lines) + "\n"


def write_results(records: list[dict], out: str | Path, *, config: dict | None = None, plots: bool = True) -> str:
    """Writes results.md, results.csv, results.json (a list of task records), aggregates.json and
    the plots to `out`; returns the markdown table."""
    out = Path(out)
    table = markdown(records, config)
    (out / "results.md").write_text(table)
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
    (out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    rows = per_env(records)
    (out / "aggregates.json").write_text(json.dumps({"per_env": rows, "averages": averages(rows)}, indent=2) + "\n")
    if plots and records:
        write_plots(records, out)
    return table


def _best_so_far(tree_log: Path) -> tuple[list[int], list[float]]:
    """(calls, best train accuracy so far) from a task's tree.jsonl."""
    calls, best, value = [], [], 0.0
    if not tree_log.exists():
        return calls, best
    for n, line in enumerate(tree_log.read_text().splitlines(), start=1):
        node = json.loads(line)
        if node.get("value") is not None and not node.get("error"):
            value = max(value, float(node["value"]))
        calls.append(n)
        best.append(value)
    return calls, best


def write_plots(records: list[dict], out: Path) -> None:
    """accuracy.png, normalized_return.png (per env and method) and accuracy_vs_calls.png (if a method called an LLM)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = per_env(records)
    envs = _ordered(r["env"] for r in rows)
    methods = _ordered(r["method"] for r in rows)
    width = 0.8 / max(1, len(methods))
    for metric, name, ylabel in (("test_accuracy", "accuracy.png", "held-out test accuracy"),
                                 ("normalized_return", "normalized_return.png", "normalized return")):
        fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(envs)), 4))
        for i, method in enumerate(methods):
            xs, ys, errs = [], [], []
            for j, env in enumerate(envs):
                row = next((r for r in rows if r["env"] == env and r["method"] == method), None)
                if row is not None and row[metric] is not None:
                    xs.append(j + (i - (len(methods) - 1) / 2) * width)
                    ys.append(row[metric])
                    errs.append(row[f"{metric}_se"] or 0.0)
            ax.bar(xs, ys, width, yerr=errs, label=method)
        ax.set_xticks(range(len(envs)))
        ax.set_xticklabels([e.split("/")[-1] for e in envs], rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not on them
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    curves = [(task.name, *_best_so_far(task.directory(out) / "tree.jsonl"))
              for task in (Task(r["env"], parse_method(r["method"]), r["seed"]) for r in records)]
    curves = [curve for curve in curves if curve[1]]
    if not curves:  # no method made LLM calls (e.g. --methods reference): no empty plot
        (out / "accuracy_vs_calls.png").unlink(missing_ok=True)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, calls, best in curves:
        ax.step(calls, best, where="post", label=name)
    ax.set_xlabel("LLM calls")
    ax.set_ylabel("best train accuracy so far")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_calls.png", dpi=110)
    plt.close(fig)


def describe(record: dict) -> str:
    if record.get("note") and not record.get("has_program"):
        return f"N/A ({record['note']}); baselines {record.get('plan_seconds', 0.0):.1f} s"
    norm = record.get("normalized_return")
    norm_text = "N/A" if norm is None else f"{norm:.2f}"
    return (f"train acc {record['train_accuracy']:.3f}, test acc {record['test_accuracy']:.3f}, "
            f"normalized return {norm_text}, {record['calls']} calls, {record['tokens']} tokens, "
            f"{record['wall_seconds']:.1f} s")
