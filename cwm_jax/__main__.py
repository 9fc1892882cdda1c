"""`python -m cwm_jax SUBCOMMAND ...`: the `cwm-jax` command (cwm_jax/cli.py)."""

import sys

from cwm_jax.cli import main

sys.exit(main(prog="python -m cwm_jax"))
