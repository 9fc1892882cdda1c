"""`import cwm_jax` stays cheap: gymnax (which imports matplotlib and seaborn) loads on first use.

Measured on the 2-core CI machine: `python -c "import cwm_jax"` took 3.6 s with
gymnax imported eagerly and 1.1 s without it (docs/testing.md, "Import time").
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("gymnax", "matplotlib", "seaborn", "flax")


def test_import_cwm_jax_does_not_import_gymnax_or_matplotlib():
    probe = (
        "import sys, cwm_jax\n"
        "cwm_jax.env_spec('gymnax/CartPole').description\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "", f"`import cwm_jax` imported: {out.stdout.strip()}"

