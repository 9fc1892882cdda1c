"""What a benchmark runs: its configuration (recorded in benchmark.json) and its grid of tasks."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from synth.bench.methods import BenchMethod, parse_method

__all__ = ["CONFIG_VERSION", "BenchConfig", "Task", "task_grid", "write_json"]

CONFIG_VERSION = 1


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to run. `plan` holds planner options by name (simulations, horizon, ...; `cwm_jax.planning.Option`)."""

    envs: tuple[str, ...]
    methods: tuple[BenchMethod, ...]
    seeds: tuple[int, ...]
    budget: int = 10
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = 120.0
    description: str = "full"
    value: str = "paper"  # the search value of the synthesis methods, a key of synth.search.node.VALUE_METRICS
    temperature: float | None = 1.0
    max_tokens: int | None = 4096  # as `cwm-jax synth` and `cwm-jax bench`
    prices: tuple[float, float] | None = None
    concurrency: int = 1
    task_concurrency: int = 1
    plan_seeds: int = 16
    plan: dict[str, Any] = dataclasses.field(default_factory=dict)
    devices: int | None = None
    sandbox_workers: int | None = None

    @property
    def needs_llm(self) -> bool:
        return any(m.kind.needs_llm for m in self.methods)

    @property
    def tasks_in_flight(self) -> int:
        """Tasks also score, fit and plan between calls; the shared client keeps the calls within --concurrency."""
        return max(1, self.concurrency)

    def to_json(self) -> dict:
        record = dataclasses.asdict(self)
        record.pop("api_key")
        record["methods"] = [m.label for m in self.methods]
        return {"version": CONFIG_VERSION, **record}

    @classmethod
    def from_json(cls, record: dict) -> BenchConfig:
        fields = {k: v for k, v in record.items() if k in {f.name for f in dataclasses.fields(cls)}}
        fields["methods"] = tuple(parse_method(m) for m in record["methods"])
        for key in ("envs", "seeds"):
            fields[key] = tuple(record[key])
        if fields.get("prices") is not None:
            fields["prices"] = tuple(fields["prices"])
        return cls(**fields)


@dataclasses.dataclass(frozen=True)
class Task:
    env: str  # canonical id, "gymnax/CartPole"
    method: BenchMethod
    seed: int

    def directory(self, out: Path) -> Path:
        return out / "tasks" / self.env.split("/")[-1] / self.method.slug / f"seed{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.env.split('/')[-1]} / {self.method.label} / seed {self.seed}"


def task_grid(config: BenchConfig) -> list[Task]:
    return [Task(env, method, seed) for env in config.envs for method in config.methods for seed in config.seeds]


def write_json(path: Path, payload: Any) -> None:
    """Atomic: a kill leaves the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)
