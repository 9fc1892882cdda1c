"""CWMB, the paper's benchmark: its 18 Gymnasium environments as `gymnasium/<id>` sources (`--envs cwmb`).

The paper ran gymnasium 0.29.1 with MuJoCo 2.3 (`-v4` tasks). Each entry
names the closest id that runs on the installed gymnasium and says what
differs from the paper's environment (docs/benchmark.md, "CWMB"). These ids
are recorded the paper's way (`cwm_jax.data.cwmb_recording`): 10
trajectories of at most 100 steps per split.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CWMB", "MUJOCO_CEM", "MUJOCO_EPISODE_STEPS", "RECORDING", "CWMBEnv", "bench_ids", "entry",
           "episode_steps", "planner_defaults"]

# Part of a CWMB id's `data_version`: bump it when the recording recipe changes (cached splits are recorded again).
RECORDING = "cwmb-recording-2"


class CWMBEnv(NamedTuple):
    """One environment of the paper's benchmark.

    Attributes:
      paper_id: the id the paper used (gymnasium 0.29.1).
      gym_id: the id run here (the installed gymnasium).
      planner: "mcts" (discrete actions) or "cem" (continuous), as in the paper.
      differs: what differs from the paper's environment ("" when nothing does but the library versions).
      deterministic: "" when the next observation, reward and done are a function of (observation, action);
        otherwise why not (what the determinism probe looks for: cwm_jax.data.cwmb_recording.probe).
    """

    paper_id: str
    gym_id: str
    planner: str
    differs: str = ""
    deterministic: str = ""

    @property
    def mujoco(self) -> bool:
        return self.planner == "cem" and self.gym_id != "Pendulum-v1"

    @property
    def why_no_reference(self) -> str:
        """Why no reference CWM is written by hand for it (the benchmark's N/A rows)."""
        reasons = ["MuJoCo's contacts, constraints and integrator are not written in jax.numpy by hand here"
                   if self.mujoco else ""] + [self.deterministic]
        return "; ".join(r for r in reasons if r) or "none written yet"


_MUJOCO_V4 = ("the -v4 task, run on MuJoCo 4 (the paper: MuJoCo 2.3); gymnasium 1.3 still registers -v4 "
              "(with a deprecation warning) and its code is unchanged, but the physics engine is two major "
              "versions newer, so trajectories differ numerically")

CWMB: tuple[CWMBEnv, ...] = (
    CWMBEnv("Blackjack-v1", "Blackjack-v1", "mcts",
            deterministic="chance: cards are drawn from an infinite deck, and the dealer's hidden card is not "
                          "in the observation"),
    CWMBEnv("CliffWalking-v0", "CliffWalking-v1", "mcts",
            "v0 is refused by gymnasium 1.x (DeprecatedEnv); v1 only adds an is_slippery option, off by default, "
            "so the default dynamics are v0's"),
    CWMBEnv("Taxi-v3", "Taxi-v4", "mcts",
            "v3 is refused by gymnasium 1.3 (DeprecatedEnv); v4 only fixes the is_rainy and fickle_passenger "
            "options, both off by default, so the default dynamics are v3's"),
    CWMBEnv("CartPole-v1", "CartPole-v1", "mcts"),
    CWMBEnv("MountainCar-v0", "MountainCar-v0", "mcts"),
    CWMBEnv("Acrobot-v1", "Acrobot-v1", "mcts"),
    CWMBEnv("Pendulum-v1", "Pendulum-v1", "cem"),
    CWMBEnv("Reacher-v4", "Reacher-v4", "cem", _MUJOCO_V4,
            deterministic="hidden state: the target's velocity is not in the observation (measured: moving it "
                          "changes the next observation by up to 0.011)"),
    CWMBEnv("Pusher-v4", "Pusher-v5", "cem",
            "Pusher-v4 raises ImportError on mujoco>=3 (gymnasium issue 950: the object's density was below "
            "air's); v5 fixes that density and computes reward_near and reward_dist AFTER the physics step "
            "(v4: before), so rewards differ from the paper's",
            deterministic="hidden state: the observation holds the arm's joint velocities only, not the "
                          "object's (qvel[7:])"),
    CWMBEnv("InvertedPendulum-v4", "InvertedPendulum-v4", "cem", _MUJOCO_V4),
    CWMBEnv("InvertedDoublePendulum-v4", "InvertedDoublePendulum-v4", "cem", _MUJOCO_V4,
            deterministic="hidden state: the observation clips the joint velocities to +-10 (measured: a clipped "
                          "state's true velocity changes the next observation by up to 0.94)"),
    CWMBEnv("HalfCheetah-v4", "HalfCheetah-v4", "cem", _MUJOCO_V4),
    CWMBEnv("Hopper-v4", "Hopper-v4", "cem", _MUJOCO_V4),
    CWMBEnv("Swimmer-v4", "Swimmer-v4", "cem", _MUJOCO_V4),
    CWMBEnv("Walker2d-v4", "Walker2d-v4", "cem", _MUJOCO_V4,
            deterministic="hidden state: the observation clips the velocities to +-10 (measured: up to 0.57 in the "
                          "next observation)"),
    CWMBEnv("Ant-v4", "Ant-v4", "cem", _MUJOCO_V4,
            deterministic="hidden state: the reward reads MuJoCo's body positions as the last substep left them, "
                          "not as qpos and qvel give them (measured: up to 0.021)"),
    CWMBEnv("Humanoid-v4", "Humanoid-v4", "cem", _MUJOCO_V4,
            deterministic="hidden state: the reward reads MuJoCo's body positions as the last substep left them "
                          "(measured: up to 1.2e-4)"),
    CWMBEnv("HumanoidStandup-v4", "HumanoidStandup-v4", "cem", _MUJOCO_V4),
)

_BY_GYM_ID = {e.gym_id: e for e in CWMB}

# The MuJoCo tasks' oracle steps the real env in Python (`gymnasium_source.real_step`, about 2,500-25,000
# steps/s here), so their planning uses what a 2-core CPU affords, the same for every model: CEM replanning
# every step with 8 x 2 x 16 = 256 simulated steps per decision (the paper: open-loop 100 x 20 x 1000), and
# episodes of 100 steps (gymnasium's limit is 1000; the recorded trajectories have 100 too).
MUJOCO_CEM = (("horizon", 8), ("iterations", 2), ("num_samples", 16), ("num_elites", 4))
MUJOCO_EPISODE_STEPS = 100


def bench_ids() -> tuple[str, ...]:
    """The ids `--envs cwmb` stands for, in the paper's order (discrete six, then Pendulum and MuJoCo)."""
    return tuple(f"gymnasium/{e.gym_id}" for e in CWMB)


def _is_mujoco(gym_id: str) -> bool:
    found = entry(gym_id)
    return found is not None and found.mujoco


def planner_defaults(gym_id: str) -> tuple[tuple[str, int], ...]:
    """`EnvSpec.planner_defaults` of a gymnasium id: `MUJOCO_CEM` for the 11 MuJoCo tasks, else none."""
    return MUJOCO_CEM if _is_mujoco(gym_id) else ()


def episode_steps(gym_id: str) -> int | None:
    """`EnvSpec.episode_steps` of a gymnasium id: `MUJOCO_EPISODE_STEPS` for the 11 MuJoCo tasks, else None."""
    return MUJOCO_EPISODE_STEPS if _is_mujoco(gym_id) else None


def entry(gym_id: str) -> CWMBEnv | None:
    """The CWMB entry of a gymnasium id (as run here, e.g. "Taxi-v4"), or None if it is not one of the 18."""
    return _BY_GYM_ID.get(gym_id)
