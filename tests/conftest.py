"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from cwm_jax.sandbox.testing import DebugSandbox
from tests.sandbox_support import ENV


@pytest.fixture(scope="module")
def box():
    """A warm one-worker sandbox (test operations enabled), one per test module."""
    with DebugSandbox(size=1, timeout_s=20, warm_envs=[ENV]) as shared:
        yield shared
