"""Synthesise a Code World Model with an LLM: `cwm-jax synth` (cwm_jax/commands/synth.py).

    python experiments/synth.py --env gymnax/CartPole --method gif-mcts --budget 50 \\
        --base-url http://localhost:8000/v1 --model NAME --out runs/cartpole
"""

import sys
from pathlib import Path

# This file is named like the `synth` package: put the repository root before
# this folder on the import path so `import synth` resolves to the package.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cwm_jax.commands.main import script  # noqa: E402

if __name__ == "__main__":
    sys.exit(script("synth", "python experiments/synth.py"))
