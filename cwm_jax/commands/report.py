"""What `cwm-jax plan` and `cwm-jax train` print and plot (matplotlib is imported only to plot)."""

from __future__ import annotations

import math

__all__ = ["summary_table", "write_learning_curve", "write_plot"]


def summary_table(spec, model_desc, config, value, model, random, oracle, norm, sims_per_s) -> str:
    """The table `cwm-jax plan` prints: model, random and oracle returns, timings, normalized return.

    `config` is the planner's config; `value` the leaf value of MCTS ("rollouts" or the `--value` given).
    """
    from cwm_jax.planning import planner_of

    def row(name, ev):
        return f"  {name:<8} {ev.mean:>10.1f} ± {ev.std:<8.1f} {ev.compile_seconds:>9.1f} {ev.run_seconds:>8.1f}"

    reason = "no oracle for this environment" if math.isnan(oracle.mean) else "the oracle does not beat random"
    norm_text = f"N/A ({reason})" if norm is None else f"{norm:.3f}"
    entry = planner_of(config)
    how = f"{entry.describe(config, value)}, discount {config.discount}"
    if spec.episode_steps is not None:  # e.g. CWMB's MuJoCo tasks (cwm_jax/envs/cwmb.py)
        how += f", episodes of at most {spec.episode_steps} steps"
    unit = entry.unit
    n = len(model.returns)
    lines = [
        "",
        f"{spec.name}: {n} seeds, {how}",
        f"model: {model_desc}",
        "",
        f"  {'policy':<8} {'mean return ± std':>21} {'compile s':>9} {'run s':>8}",
        row("model", model),
        row("random", random),
        row("oracle", oracle),
        "",
        f"  normalized return (model - random) / (oracle - random): {norm_text}",
        f"  model planning: {model.compile_seconds:.1f} s compile, {model.run_seconds:.1f} s run, "
        f"{int(model.lengths.sum())} real steps, {sims_per_s:,.0f} {unit}",
    ]
    return "\n".join(lines)


def write_plot(path: str, spec, model, random, oracle) -> None:
    """PNG of the per-seed returns of model, random and oracle (`cwm-jax plan --plot`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4))
    seeds = np.arange(len(model.returns))
    width = 0.27
    for i, (ev, color) in enumerate([(model, "tab:blue"), (random, "tab:gray"), (oracle, "tab:green")]):
        ax.bar(seeds + (i - 1) * width, ev.returns, width, label=f"{ev.label} (mean {ev.mean:.1f})", color=color)
    ax.set_xlabel("seed")
    ax.set_ylabel("episode return")
    ax.set_title(f"{spec.name}: per-seed returns")
    ax.set_xticks(seeds)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not on them
    _save(fig, path)


def write_learning_curve(path: str, name: str, model: str, steps, real_curve, model_curve) -> None:
    """PNG of the learning curve of `cwm-jax train --plot`: real-env and training-env return."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, real_curve, marker="o", label="real env (greedy)")
    ax.plot(steps, model_curve, marker=".", linestyle="--", label=f"training env ({model}, stochastic)")
    ax.set_xlabel("model steps per seed")
    ax.set_ylabel("mean episode return")
    ax.set_title(f"PPO on {name}, trained in {model}", fontsize="medium", wrap=True)  # a long PATH.py wraps
    ax.legend(loc="best", fontsize="small")
    _save(fig, path)


def _save(fig, path: str) -> None:
    """Writes `fig` as PNG through Python's own file, so a failed write raises OSError.

    (matplotlib's PNG writer reports no error for a full disk: `savefig("/dev/full")` returns quietly.)
    """
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    with open(path, "wb") as handle:
        handle.write(buffer.getvalue())
