"""The benchmark tables: `cwm-jax bench` (cwm_jax/commands/bench.py over synth/bench/).

    python experiments/benchmark.py --methods reference --seeds 1
"""

import sys
from pathlib import Path

# experiments/ holds synth.py, named like the `synth` package: put the
# repository root first on the import path (as experiments/synth.py does).
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cwm_jax.commands.main import script  # noqa: E402

if __name__ == "__main__":
    sys.exit(script("bench", "python experiments/benchmark.py"))
