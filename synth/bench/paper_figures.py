"""The paper's CWMB figures beside ours: results.md's "CWMB" section (Dainese et al. 2024, Tables 2, 10, 11).

Per environment: GIF-MCTS's accuracy and normalized return with GPT-4 Turbo
(budget 10, 1 seed) and Llama 3 70B (budget 50, seed 1), where the paper
prints them per environment (Tables 10 and 11 list eleven environments one
by one; the remaining seven only as a range). Averages: Table 2, and
Agent2World (2025) with GPT-4o-mini, which reports discrete accuracy and an
overall normalized return only.
"""

from __future__ import annotations

import math

__all__ = ["AVERAGES", "PER_ENV", "cwmb_section"]

# paper id -> ((GPT-4 Turbo accuracy, return), (Llama 3 70B accuracy, return)); None: N/A in the paper.
PER_ENV: dict[str, tuple[tuple[float, float | None], tuple[float, float | None]]] = {
    "CartPole-v1": ((1.00, 0.99), (1.00, 1.11)),
    "CliffWalking-v0": ((1.00, 0.98), (1.00, 1.01)),
    "MountainCar-v0": ((1.00, None), (1.00, None)),
    "Taxi-v3": ((0.99, 0.87), (0.92, 0.67)),
    "Blackjack-v1": ((0.93, 0.41), (0.83, 0.53)),
    "Acrobot-v1": ((0.53, None), (0.54, None)),
    "InvertedPendulum-v4": ((0.66, 0.08), (0.66, 0.14)),
    "Pusher-v4": ((0.41, 0.72), (0.41, 0.74)),
    "Pendulum-v1": ((0.38, 0.51), (0.34, -0.15)),
    "Reacher-v4": ((0.42, 0.88), (0.13, 0.93)),
    "Ant-v4": ((0.33, 0.69), (0.33, 0.67)),
}
_REMAINING = "GPT-4: acc 0.33-0.43, R -0.04-0.23; Llama 3: acc 0.25-0.34, R 0.00-0.15 (Humanoids N/A)"

# (system, model and budget, discrete acc, discrete R, continuous acc, continuous R); None: not reported.
AVERAGES = (
    ("GIF-MCTS (paper)", "GPT-4 Turbo, 10 calls", "0.91±0.08", "0.81±0.06", "0.40±0.03", "0.26±0.01"),
    ("WorldCoder (paper)", "GPT-4 Turbo, 10 calls", "0.87±0.09", "0.79±0.06", "0.24±0.06", "0.20±0.01"),
    ("GIF-MCTS (paper)", "Llama 3 70B, 50 calls", "0.84±0.03", "0.76±0.03", "0.35±0.03", "0.22±0.01"),
    ("WorldCoder (paper)", "Llama 3 70B, 50 calls", "0.79±0.04", "0.60±0.04", "0.32±0.03", "0.19±0.01"),
    ("Agent2World (2025)", "GPT-4o-mini", "0.917", "0.481 (all 18)", "-", "-"),
    ("GIF-MCTS (Agent2World's run)", "GPT-4o-mini", "0.914", "0.349 (all 18)", "-", "-"),
)


def _finite(value: float | None) -> float | None:
    """None for a missing or NaN figure (an oracle that cannot run), the figure otherwise."""
    return None if value is None or math.isnan(value) else value


def _cell(value: float | None) -> str:
    return "N/A" if value is None else f"{value:.2f}"


def cwmb_section(rows: list[dict], fmt) -> list[str]:
    """Markdown lines comparing `rows` (report.per_env rows of CWMB envs) with the paper; `fmt(value, se)` formats ours."""
    from cwm_jax.envs import cwmb

    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = ["", "## CWMB beside the paper (accuracy / strict accuracy / normalized return)", "",
             "| env (paper's id) | " + " | ".join(methods) + " | paper GIF-MCTS GPT-4 Turbo | paper GIF-MCTS Llama 3 "
             "| random -> oracle return | note |", "|---|" + "---|" * (len(methods) + 4)]
    notes: dict[str, list[str]] = {}  # what differs -> the envs it applies to
    for found in cwmb.CWMB:
        env_rows = [r for r in rows if r["env"] == f"gymnasium/{found.gym_id}"]
        if not env_rows:
            continue
        cells = []
        for method in methods:
            row = next((r for r in env_rows if r["method"] == method), None)
            cells.append("-" if row is None else
                         f"{fmt(row['test_accuracy'], row['test_accuracy_se'])} / "
                         f"{fmt(row['test_strict_accuracy'], row['test_strict_accuracy_se'])} / "
                         f"{fmt(row['normalized_return'], row['normalized_return_se'])}")
        paper = PER_ENV.get(found.paper_id)
        gpt4, llama = (f"{_cell(p[0])} / {_cell(p[1])}" for p in paper) if paper else ("see below", "see below")
        name = found.paper_id if found.paper_id == found.gym_id else f"{found.paper_id} (run: {found.gym_id})"
        note = next((r.get("note") for r in env_rows if r.get("note")), "")
        base = env_rows[0]
        baselines = ("-" if base.get("random_return") is None else
                     f"{fmt(_finite(base['random_return']), None)} -> {fmt(_finite(base['oracle_return']), None)}")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {gpt4} | {llama} | {baselines} | {note} |")
        if found.differs:
            notes.setdefault(found.differs, []).append(found.gym_id)
    lines += ["", f"Paper, the seven MuJoCo tasks not listed one by one: {_REMAINING}.", "",
              "| system | model, budget | discrete acc | discrete R | continuous acc | continuous R |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {' | '.join(a)} |" for a in AVERAGES]
    if notes:
        lines += ["", "What differs from the paper's environments:",
                  *(f"- {', '.join(ids)}: {text}." for text, ids in notes.items())]
    return lines
