"""Pure-Python MCTS over a pure-Python CWM: the speed baseline.

This is how the GIF-MCTS paper's code plans with a CWM (`src/mcts/mcts.py`,
re-written here, not copied): the CWM is a plain Python class, and every model
call is `set_state(parent_state)` followed by `step(action)`, also when the
search walks down edges it has already expanded. A fresh tree is built for
every real step; UCT selection with C = 1, unvisited actions scored with
default Q = 1 and visit count eps = 1e-3 in the exploration term; leaf values
from one uniformly random rollout of at most 100 steps with discount 0.99,
stopping at done; the real action is sampled from softmax(Q / 0.01).

Only `math` and `random`: no numpy, no JAX.

    python experiments/python_mcts.py --steps 50     # plays CartPole, prints sims/s
"""

from __future__ import annotations

import argparse
import math
import random
import time


class PyCartPole:
    """CartPole-v1 dynamics as a plain Python CWM class (`set_state`, `step`)."""

    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4
    num_actions = 2

    def __init__(self):
        self.state = [0.0, 0.0, 0.0, 0.0]

    def set_state(self, state):
        self.state = list(state)

    def step(self, action):
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        costheta = math.cos(theta)
        sintheta = math.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = [x, x_dot, theta, theta_dot]
        done = (
            x < -self.x_threshold
            or x > self.x_threshold
            or theta < -self.theta_threshold_radians
            or theta > self.theta_threshold_radians
        )
        return list(self.state), 1.0, done

    def reset(self, rng: random.Random):
        self.state = [rng.uniform(-0.05, 0.05) for _ in range(4)]
        return list(self.state)


class Node:
    """A state node: its state, the reward and done of the edge into it, children per action."""

    __slots__ = ("state", "reward", "done", "children", "visits", "value_sum", "q_sum", "q_visits")

    def __init__(self, state, reward: float, done: bool, num_actions: int):
        self.state = state
        self.reward = reward
        self.done = done
        self.children: list[Node | None] = [None] * num_actions
        self.visits = 0
        self.value_sum = 0.0
        self.q_sum = [0.0] * num_actions
        self.q_visits = [0] * num_actions


class PythonMCTS:
    """UCT over a Python CWM; `plan(state) -> action` builds a fresh tree each call."""

    def __init__(
        self,
        model,
        num_actions: int,
        *,
        num_simulations: int = 25,
        rollout_depth: int = 100,
        discount: float = 0.99,
        ucb_c: float = 1.0,
        default_q: float = 1.0,
        eps: float = 1e-3,
        temperature: float = 0.01,
        rng: random.Random | None = None,
    ):
        self.model = model
        self.num_actions = num_actions
        self.num_simulations = num_simulations
        self.rollout_depth = rollout_depth
        self.discount = discount
        self.ucb_c = ucb_c
        self.default_q = default_q
        self.eps = eps
        self.temperature = temperature
        self.rng = rng or random.Random(0)

    def _model_step(self, state, action):
        self.model.set_state(state)
        return self.model.step(action)

    def _select(self, node: Node) -> int:
        log_n = math.log(max(node.visits, 1))
        best, best_actions = -math.inf, []
        for a in range(self.num_actions):
            n = node.q_visits[a]
            q = node.q_sum[a] / n if n > 0 else self.default_q
            score = q + self.ucb_c * math.sqrt(log_n / (n + self.eps))
            if score > best:
                best, best_actions = score, [a]
            elif score == best:
                best_actions.append(a)
        return self.rng.choice(best_actions)

    def _rollout(self, node: Node) -> float:
        if node.done:
            return 0.0
        state, ret = node.state, 0.0
        for i in range(self.rollout_depth):
            state, reward, done = self._model_step(state, self.rng.randrange(self.num_actions))
            ret += self.discount**i * reward
            if done:
                break
        return ret

    def _simulate(self, root: Node) -> None:
        node, path = root, []
        while True:
            action = self._select(node)
            # The paper's code steps the simulator on every edge it walks.
            state, reward, done = self._model_step(node.state, action)
            child = node.children[action]
            new = child is None
            if new:
                child = Node(state, reward, done, self.num_actions)
                node.children[action] = child
            path.append((node, action))
            node = child
            if new or child.done:
                break
        value = self._rollout(node)
        node.visits += 1
        node.value_sum += value
        for parent, action in reversed(path):
            q = parent.children[action].reward + self.discount * value
            parent.q_sum[action] += q
            parent.q_visits[action] += 1
            parent.visits += 1
            parent.value_sum += q
            value = q

    def plan(self, state) -> int:
        root = Node(list(state), 0.0, False, self.num_actions)
        root.visits = 1
        for _ in range(self.num_simulations):
            self._simulate(root)
        qs = [
            root.q_sum[a] / root.q_visits[a] if root.q_visits[a] else -math.inf
            for a in range(self.num_actions)
        ]
        top = max(qs)
        weights = [math.exp((q - top) / self.temperature) if q > -math.inf else 0.0 for q in qs]
        return self.rng.choices(range(self.num_actions), weights=weights)[0]


def run(num_envs: int, steps: int, *, seed: int = 0, **mcts_kwargs) -> dict:
    """Plans `steps` real steps in each of `num_envs` CartPoles, one after the other.

    Environments auto-reset at termination and at 500 steps.

    Returns:
      dict with seconds, real_steps, simulations, sims_per_s, s_per_real_step
      (per batch of `num_envs` rows, i.e. the time to plan one step for every
      row), and episodes_finished / mean_episode_return of finished episodes.
    """
    rng = random.Random(seed)
    real = PyCartPole()
    mcts = PythonMCTS(PyCartPole(), PyCartPole.num_actions, rng=rng, **mcts_kwargs)
    returns = []
    start = time.perf_counter()
    for _ in range(num_envs):
        state, ret, t = real.reset(rng), 0.0, 0
        for _ in range(steps):
            action = mcts.plan(state)
            real.set_state(state)
            state, reward, done = real.step(action)
            ret, t = ret + reward, t + 1
            if done or t >= 500:
                returns.append(ret)
                state, ret, t = real.reset(rng), 0.0, 0
    seconds = time.perf_counter() - start
    real_steps = num_envs * steps
    sims = real_steps * mcts.num_simulations
    return {
        "seconds": seconds,
        "real_steps": real_steps,
        "simulations": sims,
        "sims_per_s": sims / seconds,
        "s_per_real_step": seconds / steps,
        "episodes_finished": len(returns),
        "mean_episode_return": sum(returns) / len(returns) if returns else None,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=1, help="CartPoles planned one after the other")
    parser.add_argument("--steps", type=int, default=100, help="real steps per CartPole")
    parser.add_argument("--simulations", type=int, default=25)
    parser.add_argument("--rollout-depth", type=int, default=100)
    args = parser.parse_args(argv)
    out = run(
        args.envs, args.steps, num_simulations=args.simulations, rollout_depth=args.rollout_depth
    )
    print(
        f"python MCTS: {out['real_steps']} real steps, {out['simulations']} simulations in "
        f"{out['seconds']:.2f} s: {out['sims_per_s']:,.0f} sims/s, "
        f"{out['s_per_real_step'] * 1e3:.2f} ms per real step"
    )


if __name__ == "__main__":
    main()
