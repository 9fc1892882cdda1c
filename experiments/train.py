"""Train PPO inside a Code World Model: `cwm-jax train` (cwm_jax/commands/train.py).

    python experiments/train.py --env gymnax/CartPole --model reference --seeds 16
"""

import sys
from pathlib import Path

# Run this checkout's packages, not an installed copy: the repository root goes first on the path.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cwm_jax.commands.main import script  # noqa: E402

if __name__ == "__main__":
    sys.exit(script("train", "python experiments/train.py"))
