"""A rough CWM of gymnasium's HalfCheetah-v4, written the way an LLM writes one (scripted, not fitted by hand).

The state is the observation [17]: rootz, rooty (pitch), six joint angles
(back thigh, shin, foot; front thigh, shin, foot), then the velocities
rootx, rootz, rooty and the six joint velocities. Each joint is a damped
motor; the torso bobs on a spring; the forward speed follows the legs'
push (back thigh swinging back, front thigh forward) against drag. The
constants are guesses: the gears of the XML (120, 90, 60, 120, 60, 30) over
guessed inertias. `experiments/cwmb_fit.py` fits them to recorded data.
"""

import jax.numpy as jnp

DT = 0.05
GAIN_BTHIGH = 30.0
GAIN_BSHIN = 22.0
GAIN_BFOOT = 15.0
GAIN_FTHIGH = 30.0
GAIN_FSHIN = 15.0
GAIN_FFOOT = 8.0
JOINT_DAMPING = 5.0
ROOT_SPRING = 40.0
ROOT_DAMPING = 4.0
PITCH_DAMPING = 3.0
PITCH_FROM_LEGS = 0.5
THRUST = 2.0
DRAG = 1.0
CTRL_COST = 0.1


def step(state, action):
    angles = state[2:8]
    vx, vz, vpitch = state[8], state[9], state[10]
    joint_vel = state[11:17]
    gains = jnp.array([GAIN_BTHIGH, GAIN_BSHIN, GAIN_BFOOT, GAIN_FTHIGH, GAIN_FSHIN, GAIN_FFOOT])
    new_joint_vel = joint_vel + DT * (gains * action - JOINT_DAMPING * joint_vel)
    new_angles = angles + DT * new_joint_vel
    push = -new_joint_vel[0] + new_joint_vel[3]
    new_vx = vx + DT * (THRUST * push - DRAG * vx)
    new_vz = vz + DT * (-ROOT_SPRING * state[0] - ROOT_DAMPING * vz)
    new_vpitch = vpitch + DT * (PITCH_FROM_LEGS * (new_joint_vel[0] - new_joint_vel[3]) - PITCH_DAMPING * vpitch)
    new_z = state[0] + DT * new_vz
    new_pitch = state[1] + DT * new_vpitch
    next_state = jnp.concatenate([jnp.stack([new_z, new_pitch]), new_angles,
                                  jnp.stack([new_vx, new_vz, new_vpitch]), new_joint_vel])
    reward = 0.5 * (vx + new_vx) - CTRL_COST * jnp.sum(action * action)
    return next_state, reward, jnp.array(False)
