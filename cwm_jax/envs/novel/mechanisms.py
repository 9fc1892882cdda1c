"""The library of physics terms that a generated world draws from.

Each term is written twice, side by side: `force(q, v)` is the world's own
dynamics (JAX), and `source()` is the same computation as text in the CWM
subset, for the world's reference CWM. The two run the same float32
operations in the same order, so a reference agrees with its world bit for
bit (checked by tests/test_novel_worlds.py on visited and random states).

q and v are float32 [n]: the body's coordinates (positions or angles) and
their velocities. Every constant a term holds is a Python float (or a tuple
of them), written into the reference as a module-level constant under the
term's own name, so both sides see the same float32 value.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

__all__ = ["ActionShaping", "Coupling", "Field", "Friction", "Gravity", "INTEGRATORS", "LinearDrag",
           "QuadraticDrag", "Spring", "Term", "Walls", "constant_lines", "integrate", "integrator_source",
           "vector"]

INTEGRATORS = ("euler", "semi-implicit euler", "midpoint")


def vector(values: tuple[float, ...]) -> jax.Array:
    """float32 [len(values)]: what `jnp.array(NAME, dtype=jnp.float32)` gives in a reference."""
    return jnp.array(values, dtype=jnp.float32)


def constant_lines(constants: dict[str, float | int | tuple]) -> list[str]:
    """Module-level constant definitions of a reference, one per line (repr round-trips floats)."""
    return [f"{name} = {value!r}" for name, value in constants.items()]


@dataclasses.dataclass(frozen=True)
class Term:
    """One force term: force(q, v) -> float32 [n] (JAX) and the same as a source expression."""

    def force(self, q: jax.Array, v: jax.Array) -> jax.Array:
        raise NotImplementedError

    def source(self) -> str:
        """The expression, in q and v, that `force` computes."""
        raise NotImplementedError

    def constants(self) -> dict[str, float | tuple]:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Gravity(Term):
    """Angular bodies: a torque -g sin(angle) on every link. Point mass: a constant pull -g on y."""

    g: float
    angular: bool

    def force(self, q, v):
        if self.angular:
            return -self.g * jnp.sin(q)
        return vector((0.0, -self.g))

    def source(self):
        return "-GRAVITY * jnp.sin(q)" if self.angular else "jnp.array((0.0, -GRAVITY), dtype=jnp.float32)"

    def constants(self):
        return {"GRAVITY": self.g}


@dataclasses.dataclass(frozen=True)
class LinearDrag(Term):
    c: float

    def force(self, q, v):
        return -self.c * v

    def source(self):
        return "-LINEAR_DRAG * v"

    def constants(self):
        return {"LINEAR_DRAG": self.c}


@dataclasses.dataclass(frozen=True)
class QuadraticDrag(Term):
    c: float

    def force(self, q, v):
        return -self.c * v * jnp.abs(v)

    def source(self):
        return "-QUADRATIC_DRAG * v * jnp.abs(v)"

    def constants(self):
        return {"QUADRATIC_DRAG": self.c}


@dataclasses.dataclass(frozen=True)
class Friction(Term):
    """Dry (Coulomb) friction: a constant force against the motion, 0 at rest."""

    mu: float

    def force(self, q, v):
        return -self.mu * jnp.sign(v)

    def source(self):
        return "-FRICTION * jnp.sign(v)"

    def constants(self):
        return {"FRICTION": self.mu}


@dataclasses.dataclass(frozen=True)
class Spring(Term):
    """A spring pulling every coordinate towards its anchor (positional bodies)."""

    k: float
    anchor: tuple[float, ...]

    def force(self, q, v):
        return -self.k * (q - vector(self.anchor))

    def source(self):
        return "-SPRING * (q - jnp.array(SPRING_ANCHOR, dtype=jnp.float32))"

    def constants(self):
        return {"SPRING": self.k, "SPRING_ANCHOR": self.anchor}


@dataclasses.dataclass(frozen=True)
class Field(Term):
    """A constant force (a wind) that acts only while coordinate `axis` is in [low, high)."""

    axis: int
    low: float
    high: float
    push: tuple[float, ...]

    def force(self, q, v):
        inside = (q[self.axis] >= self.low) & (q[self.axis] < self.high)
        return jnp.where(inside, vector(self.push), 0.0)

    def source(self):
        return ("jnp.where((q[FIELD_AXIS] >= FIELD_LOW) & (q[FIELD_AXIS] < FIELD_HIGH), "
                "jnp.array(FIELD_PUSH, dtype=jnp.float32), 0.0)")

    def constants(self):
        return {"FIELD_AXIS": self.axis, "FIELD_LOW": self.low, "FIELD_HIGH": self.high, "FIELD_PUSH": self.push}


@dataclasses.dataclass(frozen=True)
class Coupling(Term):
    """Two links: a torsional spring k sin(other - own). Point mass: a magnetic-like force k (v_y, -v_x)."""

    k: float
    angular: bool

    def force(self, q, v):
        if self.angular:
            return self.k * jnp.sin(jnp.stack([q[1] - q[0], q[0] - q[1]]))
        return self.k * jnp.stack([v[1], -v[0]])

    def source(self):
        if self.angular:
            return "COUPLING * jnp.sin(jnp.stack([q[1] - q[0], q[0] - q[1]]))"
        return "COUPLING * jnp.stack([v[1], -v[0]])"

    def constants(self):
        return {"COUPLING": self.k}


@dataclasses.dataclass(frozen=True)
class ActionShaping:
    """How the action becomes a force: saturation, then dead-zone, then gain, then the actuated links.

    saturation / dead_zone: None when absent. actuation: None when every
    coordinate has its own action element, else the weights [n] of the one
    action element on the coordinates.
    """

    gain: float
    saturation: float | None = None
    dead_zone: float | None = None
    actuation: tuple[float, ...] | None = None

    def apply(self, action: jax.Array) -> jax.Array:
        u = action
        if self.saturation is not None:
            u = jnp.clip(u, -self.saturation, self.saturation)
        if self.dead_zone is not None:
            u = jnp.where(jnp.abs(u) < self.dead_zone, 0.0, u)
        u = self.gain * u
        if self.actuation is not None:
            u = vector(self.actuation) * u[0]
        return u

    def source_lines(self) -> list[str]:
        lines = ["    u = action"]
        if self.saturation is not None:
            lines.append("    u = jnp.clip(u, -SATURATION, SATURATION)")
        if self.dead_zone is not None:
            lines.append("    u = jnp.where(jnp.abs(u) < DEAD_ZONE, 0.0, u)")
        lines.append("    u = GAIN * u")
        if self.actuation is not None:
            lines.append("    u = jnp.array(ACTUATION, dtype=jnp.float32) * u[0]")
        return lines

    def constants(self) -> dict:
        found = {"SATURATION": self.saturation, "DEAD_ZONE": self.dead_zone, "GAIN": self.gain,
                 "ACTUATION": self.actuation}
        return {k: v for k, v in found.items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Walls:
    """Walls at low / high on every coordinate: the position is clipped there, and the velocity of a
    body that crossed one is reversed and scaled by `restitution` (0: the body sticks to the wall)."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    restitution: float

    def apply(self, q: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array]:
        low, high = vector(self.low), vector(self.high)
        hit = (q < low) | (q > high)
        return jnp.clip(q, low, high), jnp.where(hit, -self.restitution * v, v)

    def source_lines(self, indent: str) -> list[str]:
        return [
            f"{indent}low = jnp.array(WALL_LOW, dtype=jnp.float32)",
            f"{indent}high = jnp.array(WALL_HIGH, dtype=jnp.float32)",
            f"{indent}hit = (q < low) | (q > high)",
            f"{indent}q = jnp.clip(q, low, high)",
            f"{indent}v = jnp.where(hit, -RESTITUTION * v, v)",
        ]

    def constants(self) -> dict:
        return {"WALL_LOW": self.low, "WALL_HIGH": self.high, "RESTITUTION": self.restitution}


def integrate(integrator: str, dt: float, q, v, acceleration):
    """One step of `integrator` of length dt: (q, v) -> (q', v'); acceleration(q, v) -> [n]."""
    if integrator == "euler":
        a = acceleration(q, v)
        q_next = q + dt * v
        v = v + dt * a
        return q_next, v
    if integrator == "semi-implicit euler":
        a = acceleration(q, v)
        v = v + dt * a
        return q + dt * v, v
    if integrator == "midpoint":
        a = acceleration(q, v)
        q_mid = q + 0.5 * dt * v
        v_mid = v + 0.5 * dt * a
        a_mid = acceleration(q_mid, v_mid)
        return q + dt * v_mid, v + dt * a_mid
    raise ValueError(f"unknown integrator {integrator!r}")


def integrator_source(integrator: str, indent: str) -> list[str]:
    """The lines of `integrate` for a reference (`_acceleration(q, v, u)` is the reference's helper)."""
    if integrator == "euler":
        body = ["a = _acceleration(q, v, u)", "q_next = q + DT * v", "v = v + DT * a", "q = q_next"]
    elif integrator == "semi-implicit euler":
        body = ["a = _acceleration(q, v, u)", "v = v + DT * a", "q = q + DT * v"]
    elif integrator == "midpoint":
        body = ["a = _acceleration(q, v, u)", "q_mid = q + 0.5 * DT * v", "v_mid = v + 0.5 * DT * a",
                "a_mid = _acceleration(q_mid, v_mid, u)", "q = q + DT * v_mid", "v = v + DT * a_mid"]
    else:
        raise ValueError(f"unknown integrator {integrator!r}")
    return [indent + line for line in body]


def wrap_angle(q: jax.Array) -> jax.Array:
    """Angles to [-pi, pi), as a reference writes it."""
    return jnp.mod(q + math.pi, 2 * math.pi) - math.pi
