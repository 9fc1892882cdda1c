"""Shared by the sandbox test modules: the environment, the repository root, /proc helpers."""

from __future__ import annotations

import os
from pathlib import Path

from cwm_jax import reference

ENV = "gymnax/CartPole"
REPO = Path(__file__).resolve().parent.parent


def reference_program(tag: str = "") -> str:
    return reference.source(ENV) + f"\n# {tag}\n"


def child_processes(pid: int | None = None) -> dict[int, str]:
    """pid -> state letter of the direct children of `pid` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def is_running(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in ("Z", "X")
