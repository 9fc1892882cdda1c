"""`python -m cwm_jax SUBCOMMAND ...`: the `cwm-jax` command (cwm_jax/commands/main.py)."""

import sys

from cwm_jax.commands.main import main

sys.exit(main(prog="python -m cwm_jax"))
