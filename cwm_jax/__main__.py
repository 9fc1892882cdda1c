"""`python -m cwm_jax check MODEL.py --env gymnax/CartPole [--split test] [--json]`."""

import sys

from cwm_jax.cli import main

sys.exit(main())
