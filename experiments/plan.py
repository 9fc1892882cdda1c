"""Plan with a Code World Model in the real gymnax environment: `cwm-jax plan` (cwm_jax/plan_cli.py).

    python experiments/plan.py --env gymnax/CartPole
"""

import sys

from cwm_jax.cli import script

if __name__ == "__main__":
    sys.exit(script("plan", "python experiments/plan.py"))
