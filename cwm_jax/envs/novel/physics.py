"""Generated continuous-control worlds: "gymnax/Novel-Physics-<seed>".

A seed draws a body (a point mass in a plane, a cart on a track, a pendulum,
or two coupled links), a set of terms from `mechanisms` (gravity, drag,
friction, springs, force fields over a region, coupling, walls, a speed
limit, action saturation and dead-zone), an integrator with its time step
and substeps, and a reward and termination shape. The world's `step` is JAX
built from those terms; `source()` writes the same dynamics as a reference
CWM. The description names the body, the observation and the action, and
which KINDS of term may exist: never which are active, nor any constant.
"""

from __future__ import annotations

import dataclasses
import math
import random

import jax
import jax.numpy as jnp

from cwm_jax.envs.novel import mechanisms as m

__all__ = ["BODIES", "PhysicsWorld", "describe", "draw"]

# body -> (coordinates, angular, coordinate names)
BODIES = {
    "point mass": (2, False, ("x position", "y position")),
    "cart": (1, False, ("position",)),
    "pendulum": (1, True, ("angle",)),
    "two links": (2, True, ("angle of link 1", "angle of link 2")),
}
MAX_STEPS = 200


def _num(rng: random.Random, low: float, high: float) -> float:
    """A value drawn in [low, high], rounded to 3 significant digits (readable in a reference)."""
    return float(f"{rng.uniform(low, high):.3g}")


@dataclasses.dataclass(frozen=True)
class PhysicsWorld:
    """One generated world; `step(state [2n], action [d]) -> (next_state [2n], reward [], done [])`."""

    seed: int
    body: str
    action_dim: int
    mass: tuple[float, ...]
    dt: float
    substeps: int
    integrator: str
    terms: tuple[m.Term, ...]
    shaping: m.ActionShaping
    walls: m.Walls | None
    speed_limit: float | None
    reward: str  # "quadratic" | "alive" | "goal"
    reward_after: bool  # reward from the state after the step (else before)
    cost_on_force: bool  # action cost on the shaped force (else on the raw action)
    weights: tuple[float, float, float]  # position, velocity, action
    target: tuple[float, ...]
    termination: str  # "never" | "box" | "goal"
    bound: float  # box half-width (termination "box"), goal radius (termination "goal")
    bonus: float  # reward on reaching the goal
    start: tuple[float, float]  # reset: coordinate and velocity half-ranges

    @property
    def n(self) -> int:
        return BODIES[self.body][0]

    @property
    def angular(self) -> bool:
        return BODIES[self.body][1]

    # -- the dynamics (JAX) -------------------------------------------------------------

    def _acceleration(self, q, v, u):
        force = u
        for term in self.terms:
            force = force + term.force(q, v)
        return force / m.vector(self.mass)

    def _reward(self, q, v, action, u, reached):
        cost_input = u if self.cost_on_force else action
        w_pos, w_vel, w_act = self.weights
        if self.reward == "quadratic":
            if self.angular:
                distance = jnp.sum(1.0 - jnp.cos(q - m.vector(self.target)))
            else:
                distance = jnp.sum((q - m.vector(self.target)) ** 2)
            return -(w_pos * distance + w_vel * jnp.sum(v**2) + w_act * jnp.sum(cost_input**2))
        if self.reward == "alive":
            return 1.0 - w_act * jnp.sum(cost_input**2)
        return jnp.where(reached, self.bonus, -w_pos) - w_act * jnp.sum(cost_input**2)

    def _reached(self, q):
        if self.angular:
            return jnp.cos(q[0] - self.target[0]) > math.cos(self.bound)
        return jnp.abs(q[0] - self.target[0]) < self.bound

    def step(self, state: jax.Array, action: jax.Array):
        n = self.n
        q0, v0 = state[:n], state[n:]
        u = self.shaping.apply(action)
        q, v = q0, v0
        for _ in range(self.substeps):
            q, v = m.integrate(self.integrator, self.dt, q, v, lambda q, v: self._acceleration(q, v, u))
            if self.walls is not None:
                q, v = self.walls.apply(q, v)
            if self.speed_limit is not None:
                v = jnp.clip(v, -self.speed_limit, self.speed_limit)
        if self.angular:
            q = m.wrap_angle(q)
        reached = self._reached(q)
        rq, rv = (q, v) if self.reward_after else (q0, v0)
        reward = self._reward(rq, rv, action, u, reached)
        if self.termination == "box":
            done = jnp.any(jnp.abs(q) > self.bound)
        elif self.termination == "goal":
            done = reached
        else:
            done = jnp.zeros((), jnp.bool_)
        next_state = jnp.concatenate([q, v]).astype(jnp.float32)
        return next_state, jnp.asarray(reward, jnp.float32), jnp.asarray(done, jnp.bool_)

    def reset(self, key: jax.Array) -> jax.Array:
        kq, kv = jax.random.split(key)
        span, speed = self.start
        q = jax.random.uniform(kq, (self.n,), jnp.float32, -span, span)
        v = jax.random.uniform(kv, (self.n,), jnp.float32, -speed, speed)
        return jnp.concatenate([q, v])

    def heuristic(self, key: jax.Array, obs: jax.Array) -> jax.Array:
        """Towards the target (PD) for positional bodies, energy pumping for angular ones; plus noise."""
        n, d = self.n, self.action_dim
        if self.angular:
            greedy = jnp.full((d,), 1.0) * jnp.where(obs[n] >= 0, 1.0, -1.0)
        else:
            greedy = -2.0 * (obs[:d] - m.vector(self.target[:d])) - 1.0 * obs[n:n + d]
        noise = 0.3 * jax.random.normal(key, (d,), jnp.float32)
        return jnp.clip(greedy + noise, -1.0, 1.0).astype(jnp.float32)

    # -- the reference CWM (source) ----------------------------------------------------------

    def constants(self) -> dict:
        found: dict = {"MASS": self.mass, "DT": self.dt, "SUBSTEPS": self.substeps}
        for term in self.terms:
            found.update(term.constants())
        found.update(self.shaping.constants())
        if self.walls is not None:
            found.update(self.walls.constants())
        if self.speed_limit is not None:
            found["SPEED_LIMIT"] = self.speed_limit
        found.update({"W_POSITION": self.weights[0], "W_VELOCITY": self.weights[1], "W_ACTION": self.weights[2],
                      "TARGET": self.target})
        if self.termination != "never" or self.reward == "goal":
            found["BOUND"] = self.bound
        if self.reward == "goal":
            found["BONUS"] = self.bonus
        return found

    def source(self) -> str:
        """The reference CWM: the same dynamics in the CWM subset."""
        n = self.n
        lines = [f'"""Reference CWM of gymnax/Novel-Physics-{self.seed} (written by the generator)."""', "",
                 "import math", "", "import jax.numpy as jnp", ""]
        lines += m.constant_lines(self.constants())
        lines += ["", "", "def _acceleration(q, v, u):", "    force = u"]
        lines += [f"    force = force + {term.source()}" for term in self.terms]
        lines += ["    return force / jnp.array(MASS, dtype=jnp.float32)", "", "",
                  "def step(state, action):", f"    q0 = state[:{n}]", f"    v0 = state[{n}:]"]
        lines += self.shaping.source_lines()
        lines += ["    q = q0", "    v = v0", "    for _ in range(SUBSTEPS):"]
        lines += m.integrator_source(self.integrator, "        ")
        if self.walls is not None:
            lines += self.walls.source_lines("        ")
        if self.speed_limit is not None:
            lines.append("        v = jnp.clip(v, -SPEED_LIMIT, SPEED_LIMIT)")
        if self.angular:
            lines.append("    q = jnp.mod(q + math.pi, 2 * math.pi) - math.pi")
            lines.append("    reached = jnp.cos(q[0] - TARGET[0]) > math.cos(BOUND)" if "BOUND" in self.constants()
                         else "    reached = False")
        else:
            lines.append("    reached = jnp.abs(q[0] - TARGET[0]) < BOUND" if "BOUND" in self.constants()
                         else "    reached = False")
        lines += ["    rq = q" if self.reward_after else "    rq = q0", "    rv = v" if self.reward_after else "    rv = v0",
                  "    cost = jnp.sum(u**2)" if self.cost_on_force else "    cost = jnp.sum(action**2)"]
        lines += _reward_source(self.reward, self.angular)
        done = {"box": "jnp.any(jnp.abs(q) > BOUND)", "goal": "reached", "never": "jnp.zeros((), jnp.bool_)"}
        lines += [f"    done = {done[self.termination]}",
                  "    next_state = jnp.concatenate([q, v]).astype(jnp.float32)",
                  "    return next_state, jnp.asarray(reward, jnp.float32), jnp.asarray(done, jnp.bool_)", ""]
        return "\n".join(lines)


def _reward_source(reward: str, angular: bool) -> list[str]:
    if reward == "quadratic":
        distance = ("jnp.sum(1.0 - jnp.cos(rq - jnp.array(TARGET, dtype=jnp.float32)))" if angular
                    else "jnp.sum((rq - jnp.array(TARGET, dtype=jnp.float32)) ** 2)")
        return [f"    distance = {distance}",
                "    reward = -(W_POSITION * distance + W_VELOCITY * jnp.sum(rv**2) + W_ACTION * cost)"]
    if reward == "alive":
        return ["    reward = 1.0 - W_ACTION * cost"]
    return ["    reward = jnp.where(reached, BONUS, -W_POSITION) - W_ACTION * cost"]


def draw(seed: int) -> PhysicsWorld:
    """The world of `seed`: every choice and constant comes from a generator seeded with it."""
    rng = random.Random(f"novel-physics-{seed}")
    body = rng.choice(sorted(BODIES))
    n, angular, _ = BODIES[body]
    action_dim = rng.choice((1, 2)) if body == "two links" else n
    terms: list[m.Term] = []
    if angular:
        terms.append(m.Gravity(_num(rng, 2.0, 12.0), True))
    elif body == "point mass" and rng.random() < 0.4:
        terms.append(m.Gravity(_num(rng, 0.5, 3.0), False))
    optional = [
        lambda: m.LinearDrag(_num(rng, 0.05, 1.0)),
        lambda: m.QuadraticDrag(_num(rng, 0.05, 0.8)),
        lambda: m.Friction(_num(rng, 0.05, 0.6)),
        lambda: m.Field(rng.randrange(n), _num(rng, -1.5, 0.5), 0.0, tuple(_num(rng, -3.0, 3.0) for _ in range(n))),
    ]
    if not angular:
        optional.append(lambda: m.Spring(_num(rng, 0.3, 3.0), tuple(_num(rng, -1.0, 1.0) for _ in range(n))))
    if n == 2:
        optional.append(lambda: m.Coupling(_num(rng, 0.3, 3.0), angular))
    chosen = [make() for make in optional if rng.random() < 0.45] or [rng.choice(optional)()]
    for term in chosen:
        if isinstance(term, m.Field):  # its region: [low, low + width)
            term = dataclasses.replace(term, high=float(f"{term.low + _num(rng, 0.3, 1.2):.3g}"))
        terms.append(term)
    saturation = _num(rng, 0.4, 0.9) if rng.random() < 0.35 else None
    dead_zone = _num(rng, 0.05, 0.3) if rng.random() < 0.35 else None
    actuation = rng.choice(((1.0, 0.0), (0.0, 1.0), (1.0, -0.5))) if action_dim < n else None
    shaping = m.ActionShaping(_num(rng, 1.0, 5.0) if not angular else _num(rng, 2.0, 8.0), saturation, dead_zone,
                              actuation)
    walls = None
    if not angular and rng.random() < 0.5:
        restitution = 0.0 if rng.random() < 0.4 else _num(rng, 0.3, 0.9)
        walls = m.Walls(tuple(-_num(rng, 1.0, 2.5) for _ in range(n)), tuple(_num(rng, 1.0, 2.5) for _ in range(n)),
                        restitution)
    reward, termination = rng.choice(
        (("quadratic", "never"), ("goal", "goal")) if angular
        else (("quadratic", "never"), ("quadratic", "box"), ("alive", "box"), ("goal", "goal")))
    if reward == "goal":
        target = tuple(_num(rng, 0.8, 1.5) * rng.choice((-1, 1)) for _ in range(n)) if not angular \
            else tuple(_num(rng, 2.0, 3.1) * rng.choice((-1, 1)) for _ in range(n))
        bound = _num(rng, 0.3, 0.6) if angular else _num(rng, 0.1, 0.3)
    else:
        target = tuple(_num(rng, -3.0, 3.0) if angular else _num(rng, -1.0, 1.0) for _ in range(n))
        bound = _num(rng, 1.5, 3.0)
    weights = (_num(rng, 0.1, 2.0) if reward != "goal" else _num(rng, 0.01, 0.2),
               _num(rng, 0.01, 0.5) if rng.random() < 0.5 else 0.0,
               _num(rng, 0.001, 0.1) if rng.random() < 0.7 else 0.0)
    return PhysicsWorld(
        seed=seed, body=body, action_dim=action_dim, mass=tuple(_num(rng, 0.5, 2.0) for _ in range(n)),
        dt=rng.choice((0.02, 0.05, 0.1)), substeps=rng.choice((1, 1, 2)), integrator=rng.choice(m.INTEGRATORS),
        terms=tuple(terms), shaping=shaping, walls=walls, speed_limit=_num(rng, 2.0, 10.0),
        reward=reward, reward_after=rng.random() < 0.5, cost_on_force=rng.random() < 0.5, weights=weights,
        target=target, termination=termination, bound=bound, bonus=_num(rng, 5.0, 50.0),
        start=(_num(rng, 0.3, 3.1) if angular else _num(rng, 0.2, 1.0), _num(rng, 0.0, 0.5)))


_BODY_TEXT = {
    "point mass": "a point mass moving in a plane (x to the right, y up)",
    "cart": "a cart moving along a straight track",
    "pendulum": "a pendulum: a rigid link swinging about a fixed pivot (angle 0 is where gravity, if any, "
                "pulls it; angles grow counter-clockwise)",
    "two links": "two links, each swinging about its own fixed pivot (angle 0 is where gravity, if any, "
                 "pulls it); the links may be coupled to each other",
}


def describe(body: str, action_dim: int) -> str:
    """The description of every world with this body and action size: it depends on nothing else."""
    n, angular, names = BODIES[body]
    rows = [f"  {i}  {name}" + (" (radians, wrapped to [-pi, pi))" if angular else "") for i, name in enumerate(names)]
    rows += [f"  {n + i}  velocity of the {name}" + (" (radians per time unit)" if angular else "")
             for i, name in enumerate(names)]
    if action_dim == n:
        action = "a force on each coordinate, in the order of the observation" if not angular else \
            "a torque on each link, in the order of the observation"
    else:
        action = "one torque; which links it acts on, and with what weight, is part of the world's rules"
    return f"""\
A generated world of the continuous-control family, made for this benchmark:
no textbook describes it, so its rules must be learned from the recorded
transitions. The body is {_BODY_TEXT[body]}.

Observation (state), a float32 vector of {2 * n} elements:
{chr(10).join(rows)}

Action: a float32 vector of {action_dim} element{"s" if action_dim > 1 else ""}, each in [-1, 1]: {action}.

Dynamics: deterministic; nothing random happens within an episode. The state
is advanced by a fixed time step with one integrator (explicit Euler,
semi-implicit Euler or the midpoint method), possibly in several equal
substeps. The forces are a sum of terms from a library; any subset of these
KINDS may be active, each with its own constants, none of which is given:
gravity (a torque pulling each link towards angle 0, or a constant downward
pull on a point mass), linear drag, quadratic drag, dry friction, springs
pulling towards an anchor point, a constant force that acts only while the
body is inside a region, coupling between the coordinates (a torsional
spring between links, or a force turning a point mass's velocity), walls
that stop the body and either bounce it back with some restitution or make
it stick, a limit on the speed of each coordinate, and an action that passes
through a saturation, a dead-zone and a gain before it acts, each mass
dividing its force.

Reward: one of these shapes, with weights that are not given: minus a
weighted sum of the squared distance to a target (for angles, 1 - cos of
the difference), the squared velocities and the squared action (computed
from the state before or after the step, and from the action as given or
as it acts); or 1 per step minus an action cost; or a bonus in the step
that reaches a goal region around a target value of coordinate 0 and a
small cost in every other step, minus an action cost.

Termination (done): one of: never; when a coordinate leaves a box around 0;
when coordinate 0 reaches the goal region. Episodes are also cut after
{MAX_STEPS} steps, but that time limit is not part of the dynamics.
"""
