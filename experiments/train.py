"""Train PPO inside a Code World Model: `cwm-jax train` (cwm_jax/train_cli.py).

    python experiments/train.py --env gymnax/CartPole --model reference --seeds 16
"""

import sys

from cwm_jax.cli import script

if __name__ == "__main__":
    sys.exit(script("train", "python experiments/train.py"))
