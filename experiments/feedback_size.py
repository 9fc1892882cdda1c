"""What the improve prompt's richer feedback costs in prompt size, and what it shows (issue 22).

For a few wrong programs (a model's typical mistakes), scores each on its
environment's train split twice: with the paper's feedback (the first failing
transition) and with the default "diverse" feedback (up to 3 transitions
wrong in different ways, and a summary of which components and elements are
wrong how often). Prints the improve prompt's size both ways (characters, and
tokens at synth.budget's 4 characters per token) and how many transitions
each shows.

    python experiments/feedback_size.py [--json PATH]

Scoring runs in this process: every program here is this script's own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout, not an installed copy

from cwm_jax import envs, reference  # noqa: E402
from cwm_jax.score import scoring  # noqa: E402
from synth import prompts  # noqa: E402
from synth.llm.budget import estimate_tokens  # noqa: E402
from synth.search.run import FEEDBACK_TRANSITIONS  # noqa: E402
from synth.testing.scripted_llm import LEFT_WALL_ZEROED  # noqa: E402


def cases() -> list[tuple[str, str, str]]:
    """(label, env id, wrong program)."""
    grid = reference.source("gymnax/Novel-Grid-2")
    no_ice = grid.replace("(_cell(grid, r, c) == ICE)", "(_cell(grid, r, c) == -1.0)")
    physics = reference.source("gymnax/Novel-Physics-4")
    no_dead_zone = physics.replace("    u = jnp.where(jnp.abs(u) < DEAD_ZONE, 0.0, u)\n", "")
    return [
        ("MountainCarContinuous: left wall as gymnasium", "gymnax/MountainCarContinuous", LEFT_WALL_ZEROED[0]),
        ("CartPole-unknown: textbook constants", "gymnax/CartPole-unknown", reference.source("CartPole")),
        ("Pendulum-unknown: textbook constants", "gymnax/Pendulum-unknown", reference.source("Pendulum")),
        ("Novel-Grid-2: ice missing", "gymnax/Novel-Grid-2", no_ice),
        ("Novel-Physics-4: dead-zone missing", "gymnax/Novel-Physics-4", no_dead_zone),
    ]


def measure(label: str, env_id: str, program: str) -> dict:
    spec = envs.env_spec(env_id)
    row = {"case": label, "env": spec.id}
    for feedback, k in (("first", 1), ("diverse", FEEDBACK_TRANSITIONS)):
        result = scoring.score_source(program, spec, counterexamples=k, feedback=feedback)
        assert result.valid, result.error
        text = prompts.improve(spec, program, result.counterexamples)[-1]["content"]
        row[feedback] = {"transitions": result.counterexamples.count("Transition #"),
                         "feedback_chars": len(result.counterexamples), "prompt_chars": len(text),
                         "prompt_tokens": estimate_tokens(text)}
    row["value"] = result.summary["weighted_accuracy"]
    row["summary"] = result.counterexamples.rsplit("\n\n", 1)[-1]
    return row


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="write the rows as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rows = [measure(*case) for case in cases()]
    print("| case | paper value | transitions shown (first / diverse) | improve prompt tokens (first / diverse) | "
          "added |")
    print("|---|---|---|---|---|")
    for row in rows:
        first, diverse = row["first"], row["diverse"]
        added = diverse["prompt_tokens"] - first["prompt_tokens"]
        print(f"| {row['case']} | {row['value']:.3f} | {first['transitions']} / {diverse['transitions']} | "
              f"{first['prompt_tokens']} / {diverse['prompt_tokens']} | +{added} "
              f"(+{100 * added / first['prompt_tokens']:.0f}%) |")
    for row in rows:
        print(f"{row['case']}: {row['summary']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
