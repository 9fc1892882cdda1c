"""Variants whose physical constants are unknown: "gymnax/<Env>-unknown".

Each variant runs gymnax's own dynamics with several EnvParams moved by 20%
or more from the textbook values, to values that are not round numbers. Its
description names the constants that exist but not their values, so a CWM
has to learn them from the recorded transitions (by hand, or with
`cwm_jax.fit.fitting`). Heuristic policies, reset distributions, spaces and the
reference CWM module (the textbook constants) are those of the default env;
everything that runs the real environment reads `gymnax_params` through
`EnvSpec.make_gymnax`, and transitions are cached under the variant's name.
"""

from __future__ import annotations

import dataclasses

from cwm_jax.envs.acrobot import SPEC as ACROBOT
from cwm_jax.envs.cartpole import SPEC as CARTPOLE
from cwm_jax.envs.mountain_car import SPEC as MOUNTAIN_CAR
from cwm_jax.envs.mountain_car_continuous import SPEC as MOUNTAIN_CAR_CONTINUOUS
from cwm_jax.envs.pendulum import SPEC as PENDULUM
from cwm_jax.envs.spec import EnvSpec

__all__ = [
    "ACROBOT_UNKNOWN",
    "CARTPOLE_UNKNOWN",
    "MOUNTAIN_CAR_CONTINUOUS_UNKNOWN",
    "MOUNTAIN_CAR_UNKNOWN",
    "PENDULUM_UNKNOWN",
    "UNKNOWN_NOTE",
    "UNKNOWN_SPECS",
]

UNKNOWN_NOTE = (
    "Their values differ from the textbook ones and are\nnot given: infer them from the recorded transitions."
)


def _replace_paragraph(description: str, start: str, new_paragraph: str) -> str:
    """`description` with the paragraph that begins with `start` replaced."""
    paragraphs = description.split("\n\n")
    hits = [i for i, text in enumerate(paragraphs) if text.startswith(start)]
    if len(hits) != 1:
        raise ValueError(f"expected one paragraph starting with {start!r}")
    paragraphs[hits[0]] = new_paragraph.strip("\n")
    return "\n\n".join(paragraphs)


def _variant(spec: EnvSpec, params: dict[str, float], paragraph_start: str, paragraph: str) -> EnvSpec:
    return dataclasses.replace(
        spec,
        name=f"{spec.name}-unknown",
        description=_replace_paragraph(spec.description, paragraph_start, paragraph),
        gymnax_params=tuple(params.items()),
        aliases=(),
    )


CARTPOLE_MASSCART, CARTPOLE_MASSPOLE, CARTPOLE_LENGTH = 0.83, 0.147, 0.61
CARTPOLE_UNKNOWN = _variant(
    CARTPOLE,
    {
        "gravity": 11.37,
        "masscart": CARTPOLE_MASSCART,
        "masspole": CARTPOLE_MASSPOLE,
        # gymnax stores these two derived values as fields of their own.
        "total_mass": CARTPOLE_MASSCART + CARTPOLE_MASSPOLE,
        "polemass_length": CARTPOLE_MASSPOLE * CARTPOLE_LENGTH,
        "length": CARTPOLE_LENGTH,
        "force_mag": 7.3,
    },
    "The force changes",
    f"""
The force changes the velocities, which then move the cart and the pole; the
simulation advances in fixed time steps of 0.02 seconds with the classic
cart-pole equations of motion (Barto, Sutton and Anderson 1983, as in
Gymnasium's CartPole-v1) and one explicit Euler step. The pole tips over
under gravity unless the cart moves beneath it. Unknown constants: the cart
mass, the pole mass, the half length of the pole, the push force and
gravity. {UNKNOWN_NOTE}
""",
)

ACROBOT_UNKNOWN = _variant(
    ACROBOT,
    {"link_mass_1": 1.27, "link_length_1": 0.83, "link_mass_2": 0.74},
    "Physics:",
    f"""
Physics: the equations of motion of the double pendulum as in the "book"
version of Sutton and Barto's Acrobot (Sutton 1996, "Generalization in
Reinforcement Learning"), which is also what Gymnasium's Acrobot-v1 uses.
Constants: the mass and length of each link, the position of the centre of
mass of each link along it, the moment of inertia of the links and gravity.
Some of them differ from Gymnasium's values. {UNKNOWN_NOTE} The torque is
held constant during a step. Quirk of this version: each step advances time
by 0.2 seconds with ONE single classical Runge-Kutta (RK4) step of 0.2 s
(Gymnasium also uses RK4 over 0.2 s, but subdivides it); the angles are
wrapped and the velocities clipped only after that step. There is no torque
noise.
""",
)

MOUNTAIN_CAR_UNKNOWN = _variant(
    MOUNTAIN_CAR,
    {"force": 0.00137, "gravity": 0.00311},
    "Dynamics:",
    f"""
Dynamics: in each step the velocity first changes by the engine force (a
constant force times the push direction, -1, 0 or +1) and by gravity along
the slope; the height of the track at position x is proportional to
sin(3 x), so gravity changes the velocity by -cos(3 x) times a gravity
constant. Unknown constants: the engine force and the gravity constant.
{UNKNOWN_NOTE} The new velocity is clipped to [-0.07, 0.07]. Then the
position changes by the new velocity (one step is one time unit) and is
clipped to [-1.2, 0.6]. The collisions at the edges are inelastic: if the
car ends the step exactly at the left edge (-1.2) with a negative velocity,
the velocity is set to 0.
""",
)

MOUNTAIN_CAR_CONTINUOUS_UNKNOWN = _variant(
    MOUNTAIN_CAR_CONTINUOUS,
    {"power": 0.00187, "gravity": 0.00193},
    "Dynamics:",
    f"""
Dynamics: in each step the velocity first changes by the engine (the
clipped force times a power constant) and by gravity along the slope; the
height of the track at position x is proportional to sin(3 x), so gravity
changes the velocity by -cos(3 x) times a gravity constant. Unknown
constants: the power and the gravity constant. {UNKNOWN_NOTE} The new
velocity is clipped to [-0.07, 0.07]. Then the position changes by the new
velocity (one step is one time unit) and is clipped to [-1.2, 0.6]. Quirks
of this version: at the left edge the position is clipped but the velocity
is NOT reset (unlike MountainCar-v0); and if after a step the position is at
or beyond the goal (0.45) while the velocity is negative, the velocity is
set to 0.
""",
)

PENDULUM_UNKNOWN = _variant(
    PENDULUM,
    {"g": 12.43, "m": 1.31, "l": 0.77},
    "Physics:",
    f"""
Physics: the pendulum is a uniform rigid rod rotating about one of its ends
under gravity, with no friction. Unknown constants: the mass and the length
of the rod and gravity. {UNKNOWN_NOTE} Time advances by 0.05 s per step
with one semi-implicit Euler step: the angular velocity is updated first,
from the current angle and the torque, and clipped to [-8, 8] rad/s; then
the angle advances with the NEW angular velocity.
""",
)

UNKNOWN_SPECS: tuple[EnvSpec, ...] = (
    CARTPOLE_UNKNOWN,
    ACROBOT_UNKNOWN,
    MOUNTAIN_CAR_UNKNOWN,
    MOUNTAIN_CAR_CONTINUOUS_UNKNOWN,
    PENDULUM_UNKNOWN,
)
