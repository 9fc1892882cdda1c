"""The true chance model of gymnasium's Blackjack-v1 (default options), enumerated with gymnasium's own rules.

Independent of the reference CWM (`cwm_jax/reference/gymnasium_blackjack.py`):
every probability here comes from exact recursion over gymnasium's `deck`
(an infinite deck: each draw is a uniform choice of its 13 entries) with
gymnasium's own `sum_hand`, `is_bust`, `score` and `cmp`, on a hand of
gymnasium's that shows the observation (`hand_for`). The observation is
Markov: a hand with an ace that is not usable can never make it usable again,
so which hand shows an observation does not change what follows.

`true_table()` tabulates every observation's outcomes (a hit: one per card
value; a stick: lose, draw, win); `TABLE_MODEL` plans with it like a CWM;
`optimal_values` is the exact optimal policy by dynamic programming, and
`policy_return` the exact expected return of any policy from gymnasium's
start distribution. `sample_real` checks all of it against the real env by
sampling. Trusted code (no LLM wrote it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "NUM_OUTCOMES",
    "SUMS",
    "Table",
    "hand_for",
    "hit_outcomes",
    "optimal_values",
    "policy_return",
    "record_random",
    "sample_real",
    "start_distribution",
    "stick_outcomes",
    "table_model",
    "true_table",
]

SUMS, CARDS = 32, 11  # gymnasium's observation space: Discrete(32) x Discrete(11) x Discrete(2)
NUM_OUTCOMES = 10  # a hit: one per card value 1..10; a stick: lose, draw, win


def _rules():
    from gymnasium.envs.toy_text import blackjack

    return blackjack


@functools.cache
def _card_probs() -> dict[int, float]:
    deck = _rules().deck
    return {card: deck.count(card) / len(deck) for card in sorted(set(deck))}


def hand_for(player_sum: int, usable: int) -> list[int]:
    """A player's hand of gymnasium's whose observation is (player_sum, usable): an ace and the rest, or no ace."""
    if usable:
        rest = player_sum - 11
        return [1] + ([rest] if rest >= 1 else [])
    cards, left = [], player_sum
    while left > 10:
        take = min(10, left - 2)
        cards.append(take)
        left -= take
    return cards + [left]


@functools.cache
def _dealer_scores(hard: int, ace: bool) -> dict[int, float]:
    """P(the dealer's final `score`) from a hand of hard total `hard` (holding an ace or not), drawn per gymnasium."""
    rules = _rules()
    hand = [1] * ace + [hard - ace] if hard - ace > 0 else [1] * ace
    if rules.sum_hand(hand) >= 17:
        return {rules.score(hand): 1.0}
    result: dict[int, float] = {}
    for card, p in _card_probs().items():
        for final, q in _dealer_scores(hard + card, ace or card == 1).items():
            result[final] = result.get(final, 0.0) + p * q
    return result


def stick_outcomes(player_sum: int, showing: int, usable: int) -> dict[float, float]:
    """{reward: probability} of a stick: the dealer plays out [showing, hidden, ...]; `cmp` of the scores."""
    rules = _rules()
    player = rules.score(hand_for(player_sum, usable))
    result: dict[float, float] = {}
    for final, p in _dealer_scores(showing, showing == 1).items():
        reward = 1.0 if final == 0 else rules.cmp(player, final)  # score 0: the dealer went bust
        result[reward] = result.get(reward, 0.0) + p
    return result


def hit_outcomes(player_sum: int, showing: int, usable: int) -> list[tuple[float, tuple[int, int, int], float, bool]]:
    """[(probability, next observation, reward, done)] of a hit, one per card value (gymnasium's order)."""
    rules = _rules()
    outcomes = []
    for card, p in _card_probs().items():
        hand = hand_for(player_sum, usable) + [card]
        total, soft = rules.sum_hand(hand), rules.usable_ace(hand)
        bust = rules.is_bust(hand)
        outcomes.append((p, (total, showing, soft), -1.0 if bust else 0.0, bust))
    return outcomes


def sample_real(observation, action: int, n: int, *, seed: int) -> dict[tuple, int]:
    """{(next observation, reward, done): count} of `n` steps of the real env, its hands set to show `observation`.

    The player holds `hand_for(observation)`; the dealer holds the showing
    card only, so a stick draws the hidden card first (the same distribution:
    the hidden card is a draw from the infinite deck that nothing observed
    depends on).
    """
    from cwm_jax.envs.gymnasium_source import make_env

    player_sum, showing, usable = (int(round(float(x))) for x in observation)
    env = make_env("Blackjack-v1")
    env.reset(seed=seed)
    inner, counts = env.unwrapped, {}
    try:
        for _ in range(n):
            inner.player, inner.dealer = hand_for(player_sum, usable), [showing]
            obs, reward, terminated, _, _ = inner.step(int(action))
            key = (tuple(int(x) for x in obs), float(reward), bool(terminated))
            counts[key] = counts.get(key, 0) + 1
    finally:
        env.close()
    return counts


def record_random(episodes: int, *, first_seed: int) -> dict[str, np.ndarray]:
    """Uniformly random games in the real env (reset seeds first_seed, first_seed + 1, ...), as `record_episodes`.

    More data than a split holds (20 games, about 30 transitions): for
    fitting and held-out checks (tests, `experiments/chance_blackjack.py`).
    """
    from cwm_jax.envs import env_spec
    from cwm_jax.envs.gymnasium_source import record_episodes

    seeds = list(range(first_seed, first_seed + episodes))
    return record_episodes(env_spec("gymnasium/Blackjack-v1"), seeds, lambda env, *_: env.action_space.sample(),
                           max_steps=10)


class Table(NamedTuple):
    """Every observation's outcomes, indexed [player sum, showing card, usable ace, action, outcome].

    Attributes:
      log_prob: float32 [SUMS, CARDS, 2, 2, NUM_OUTCOMES] (-inf: impossible).
      next_state: float32 [..., NUM_OUTCOMES, 3].
      reward: float32 [..., NUM_OUTCOMES].
      done: bool [..., NUM_OUTCOMES].
    """

    log_prob: np.ndarray
    next_state: np.ndarray
    reward: np.ndarray
    done: np.ndarray


@functools.cache
def true_table() -> Table:
    """The table of every observation with a player's sum of 4..21 (others: a certain loss, as a stick would be)."""
    shape = (SUMS, CARDS, 2, 2, NUM_OUTCOMES)
    log_prob = np.full(shape, -np.inf, np.float32)
    next_state = np.zeros(shape + (3,), np.float32)
    reward = np.zeros(shape, np.float32)
    done = np.ones(shape, bool)
    for s in range(SUMS):
        for d in range(CARDS):
            for u in range(2):
                next_state[s, d, u] = (s, d, u)
                log_prob[s, d, u, :, 0] = 0.0
                reward[s, d, u, :, 0] = -1.0
                if not (4 <= s <= 21 and 1 <= d <= 10 and (not u or s >= 12)):
                    continue
                stick = stick_outcomes(s, d, u)
                for i, r in enumerate((-1.0, 0.0, 1.0)):
                    log_prob[s, d, u, 0, i] = np.log(stick[r]) if stick.get(r, 0.0) > 0 else -np.inf
                    reward[s, d, u, 0, i] = r
                for i, (p, obs, r, bust) in enumerate(hit_outcomes(s, d, u)):
                    log_prob[s, d, u, 1, i], next_state[s, d, u, 1, i] = np.log(p), obs
                    reward[s, d, u, 1, i], done[s, d, u, 1, i] = r, bust
    return Table(log_prob, next_state, reward, done)


class _TableModel(NamedTuple):
    afterstate: Callable[[jax.Array, jax.Array], Any]
    chance_log_probs: Callable[[Any], jax.Array]
    outcome: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]
    num_outcomes: int


def table_model(table: Table | None = None) -> _TableModel:
    """The table as a chance model (the contract's three functions; `planners.stochastic_mcts` takes it)."""
    table = true_table() if table is None else table
    log_prob, next_state, reward, done = (jnp.asarray(x) for x in table)

    def afterstate(state, action):
        index = jnp.clip(jnp.round(state).astype(jnp.int32), 0, jnp.array([SUMS - 1, CARDS - 1, 1]))
        return jnp.concatenate([index, jnp.reshape(jnp.asarray(action, jnp.int32), (1,))])

    def chance_log_probs(after):
        return log_prob[after[0], after[1], after[2], after[3]]

    def outcome(after, chance):
        at = (after[0], after[1], after[2], after[3], chance)
        return next_state[at], reward[at], done[at]

    return _TableModel(afterstate, chance_log_probs, outcome, NUM_OUTCOMES)


def _action_values(table: Table, values: np.ndarray) -> np.ndarray:
    """float64 [SUMS, CARDS, 2, 2]: expected reward plus the value where each action leads (values [SUMS, CARDS, 2])."""
    p = np.exp(table.log_prob.astype(np.float64))
    index = table.next_state.astype(np.int64)
    later = np.where(table.done, 0.0, values[index[..., 0], index[..., 1], index[..., 2]])
    return (p * (table.reward + later)).sum(-1)


def optimal_values(table: Table | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values float64 [SUMS, CARDS, 2], greedy actions int [SUMS, CARDS, 2]) by dynamic programming.

    A hit raises the hard total, so value iteration from zero is exact after
    as many sweeps as a hand can take cards (SUMS).
    """
    table = true_table() if table is None else table
    values = np.zeros((SUMS, CARDS, 2))
    for _ in range(SUMS):
        q = _action_values(table, values)
        values = q.max(-1)
    return values, q.argmax(-1)


def policy_return(hit_probability: np.ndarray, table: Table | None = None) -> float:
    """The exact expected return, from gymnasium's start distribution, of hitting with probability [SUMS, CARDS, 2]."""
    table = true_table() if table is None else table
    values = np.zeros((SUMS, CARDS, 2))
    for _ in range(SUMS):
        q = _action_values(table, values)
        values = (1.0 - hit_probability) * q[..., 0] + hit_probability * q[..., 1]
    return float((start_distribution() * values).sum())


@functools.cache
def start_distribution() -> np.ndarray:
    """float64 [SUMS, CARDS, 2]: P(the first observation), two player cards and the dealer's first card."""
    rules, probs = _rules(), _card_probs()
    start = np.zeros((SUMS, CARDS, 2))
    for a, pa in probs.items():
        for b, pb in probs.items():
            for d, pd in probs.items():
                hand = [a, b]
                start[rules.sum_hand(hand), d, rules.usable_ace(hand)] += pa * pb * pd
    return start
