"""The "docs" description level: what the Gymnasium documentation says.

The paper (Dainese et al. 2024) gave the LLM environment descriptions at the
level of the Gymnasium documentation: what the state, the actions, the reward
and the termination are, without the physical constants and without the
integrator's details. `EnvSpec.description_for("docs")` returns these; the
"full" level (`EnvSpec.description`) spells out every constant and quirk.
"""

from __future__ import annotations

__all__ = ["DOCS"]

DOCS: dict[str, str] = {
    "CartPole": """\
A pole is attached by an un-actuated joint to a cart, which moves along a
frictionless track. The pendulum is placed upright on the cart and the goal
is to balance the pole by applying forces in the left and right direction on
the cart.

Observation (state), a float32 vector of 4 elements: cart position, cart
velocity, pole angle (radians), pole angular velocity.

Actions, an integer: 0 pushes the cart to the left, 1 pushes it to the
right.

Reward: +1 for every step taken, including the termination step.

Starting state: every element drawn uniformly from [-0.05, 0.05].

Termination (done): the pole angle is greater than +-12 degrees, or the cart
position is greater than +-2.4 (the centre of the cart reaches the edge of
the display).
""",
    "Acrobot": """\
The system consists of two links connected linearly to form a chain, with
one end of the chain fixed. The joint between the two links is actuated. The
goal is to apply torques on the actuated joint to swing the free end of the
linear chain above a given height while starting from the initial state of
hanging downwards.

Observation (state), a float32 vector of 6 elements: cos(theta1),
sin(theta1), cos(theta2), sin(theta2), angular velocity of theta1, angular
velocity of theta2. theta1 is the angle of the first joint, where 0 means
the first link points directly downwards; theta2 is relative to the angle
of the first link. The angular velocities are bounded to +-4 pi and +-9 pi.

Actions, an integer: the torque applied on the actuated joint, 0 for -1,
1 for 0 and 2 for +1.

Reward: -1 for every step that does not reach the goal, 0 for the step that
reaches it.

Starting state: theta1, theta2 and both angular velocities each drawn
uniformly from [-0.1, 0.1].

Termination (done): the free end reaches the target height,
-cos(theta1) - cos(theta2 + theta1) > 1.0.
""",
    "MountainCar": """\
A car is placed stochastically at the bottom of a sinusoidal valley; the
only possible actions are the accelerations that can be applied to the car
in either direction. The goal is to strategically accelerate the car to
reach the goal state on top of the right hill.

Observation (state), a float32 vector of 2 elements: position of the car
along the x-axis, in [-1.2, 0.6], and velocity of the car, in
[-0.07, 0.07].

Actions, an integer: 0 accelerates to the left, 1 does not accelerate,
2 accelerates to the right.

Reward: -1 for every step.

Starting state: position uniform in [-0.6, -0.4], velocity 0.

Termination (done): the position of the car is greater than or equal to 0.5
(the goal position on top of the right hill) and the velocity is
non-negative.
""",
    "MountainCarContinuous": """\
A car is placed stochastically at the bottom of a sinusoidal valley; the
only possible actions are the accelerations that can be applied to the car
in either direction. The goal is to strategically accelerate the car to
reach the goal state on top of the right hill. This is the version with
continuous actions.

Observation (state), a float32 vector of 2 elements: position of the car
along the x-axis, in [-1.2, 0.6], and velocity of the car, in
[-0.07, 0.07].

Action: a float32 vector of 1 element in [-1, 1], the directional force
applied on the car.

Reward: a negative reward of -0.1 * action^2 in every step, to penalise
large actions; reaching the goal adds +100.

Starting state: position uniform in [-0.6, -0.4], velocity 0.

Termination (done): the position of the car is greater than or equal to
0.45 (the goal position on top of the right hill) and the velocity is
non-negative.
""",
    "Pendulum": """\
The inverted pendulum swing-up problem. The system consists of a pendulum
attached at one end to a fixed point, the other end being free. The pendulum
starts in a random position and the goal is to apply torque on the free end
to swing it into an upright position, with its centre of gravity right
above the fixed point.

Observation (state), a float32 vector of 3 elements: cos(theta),
sin(theta), angular velocity in [-8, 8]. theta is 0 when the pendulum points
straight up.

Action: a float32 vector of 1 element in [-2, 2], the torque applied to the
free end.

Reward: -(theta^2 + 0.1 * theta_dt^2 + 0.001 * torque^2), where theta is
normalised to [-pi, pi]; between about -16.27 and 0.

Starting state: theta uniform in [-pi, pi], angular velocity uniform in
[-1, 1].

Termination (done): never; done is always False.
""",
    "Catch": """\
Catch from DeepMind's behaviour suite: a ball falls from the top of a
10 x 5 grid and the agent moves a paddle along the bottom row to catch it.

Observation (state): the 10 x 5 grid flattened row by row into a float32
vector of 50 elements; a cell is 1.0 where the ball or the paddle is and 0.0
elsewhere. Row 0 is the top row; the paddle is in the bottom row.

Actions, an integer: 0 moves the paddle left, 1 keeps it still, 2 moves it
right.

Reward: +1 if the ball is caught when it reaches the bottom row, -1 if it is
missed, 0 otherwise.

Starting state: the ball in a random column of the top row, the paddle in
the middle of the bottom row.

Termination (done): the ball reaches the bottom row.
""",
    "Reacher": """\
A planar two-link arm fixed at the origin reaches for a goal point; both
joints are actuated. (gymnax's kinematic "Reacher-misc", not the MuJoCo
Reacher.)

Observation (state), a float32 vector of 8 elements: cosines of the two
joint angles, sines of the two joint angles, the two angular velocities,
and the x and y coordinates of the goal.

Action: a float32 vector of 2 elements in [-1, 1], one per joint.

Reward: larger the closer the tip of the arm is to the goal, 1 on the goal.

Starting state: random joint angles and velocities and a random goal.

Termination (done): never; done is always False.
""",
    "Swimmer": """\
A point-mass swimmer in the plane must reach a goal while keeping away from
5 sea urchins that do not move. (gymnax's "Swimmer-misc", not the MuJoCo
Swimmer.)

Observation (state), a float32 vector of 16 elements: the (x, y)
coordinates of the 5 urchins, the swimmer's position, its velocity and the
goal's coordinates.

Action: a float32 vector of 2 elements in [-1, 1], the push in x and y.

Reward: larger near the goal, close to 0 near any urchin; at most 1.

Starting state: urchins, swimmer and goal at random positions, velocity 0.

Termination (done): never; done is always False.
""",
    "DeepSea": """\
DeepSea from DeepMind's behaviour suite: the agent descends an 8 x 8 grid
one row per step, starting in the top-left corner, and moves one column left
or right in every step. A treasure waits at the bottom-right; moving right
has a small cost.

Observation (state): the 8 x 8 grid flattened row by row into a float32
vector of 64 elements, 1.0 at the agent's position and 0.0 elsewhere.

Actions, an integer, 0 or 1: which one moves right depends on the cell, by
a fixed table that is the same in every episode; the other moves left.

Reward: a small cost for each move right, +1 for reaching the treasure,
0 for a move left.

Starting state: the top-left corner.

Termination (done): the agent leaves the bottom row (after 8 steps).
""",
    "DiscountingChain": """\
DiscountingChain from DeepMind's behaviour suite: in the first step the
agent picks one of 5 chains; each chain pays a single reward after a fixed
delay.

Observation (state), a float32 vector of 2 elements: the chosen chain (-1
before the first step) and the time since the start, divided by 100.

Actions, an integer 0 to 4: in the first step it picks the chain; later
actions are ignored.

Reward: each chain pays one reward at its own delay, 0 in every other step.

Starting state: context -1, time 0.

Termination (done): never; done is always False.
""",
}
