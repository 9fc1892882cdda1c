"""The best deterministic CWM of gymnasium's Blackjack-v1: the most likely outcome, always.

A hit always draws a ten-valued card (4 of 13 ranks, the likeliest value); a
stick ends the game with its likeliest result (lose, draw or win) given the
dealer's showing card, computed exactly as the reference does. It calls every
other outcome impossible. Written by the cwm-jax authors, for comparisons
(docs/chance.md).
"""

import jax.numpy as jnp

TEN_WEIGHT = 4.0  # the weight of a ten-valued card; every other card value has weight 1
STAND = 17  # the dealer stops drawing at this total
TOTALS = 32  # hard totals (aces as 1) the dealer's distribution is kept over


def card_probs():
    weights = jnp.concatenate([jnp.ones(9, dtype=jnp.float32), jnp.array([TEN_WEIGHT], dtype=jnp.float32)])
    return weights / weights.sum()


def soft_total(hard, ace):
    return jnp.where(ace & (hard + 10 <= 21), hard + 10, hard)


def dealer_final(card):
    """[TOTALS, 2]: P(the dealer stands with hard total h, holding an ace or not), from the showing `card`.

    The dealer's hand is a Markov chain on (hard total, ace held), index 2 * hard + ace: a standing hand stays,
    a drawing one moves up by each card value. Every hand stands within 16 draws, so 32 steps reach the end.
    """
    probs = card_probs()
    size = 2 * TOTALS
    index = jnp.arange(size)
    hard, ace = index // 2, index % 2 == 1
    drawing = (soft_total(hard, ace) < STAND).astype(jnp.float32)
    move = jnp.zeros((size, size), dtype=jnp.float32)
    for value in range(1, 11):
        if value == 1:  # an ace: (h, no ace) -> (h + 1, ace), (h, ace) -> (h + 1, ace)
            shift = jnp.eye(size, k=3, dtype=jnp.float32) * (1.0 - ace)[:, None] + jnp.eye(size, k=2) * ace[:, None]
        else:
            shift = jnp.eye(size, k=2 * value, dtype=jnp.float32)
        move = move + probs[value - 1] * shift
    chain = drawing[:, None] * move + jnp.diag(1.0 - drawing)
    for _ in range(5):  # chain ** 32
        chain = chain @ chain
    start = 2 * card + jnp.where(card == 1, 1, 0)
    return chain[start].reshape(TOTALS, 2)


def stick_probs(player, card):
    """[3]: P(lose, draw, win) when the player stands on `player` (<= 21)."""
    mass = dealer_final(card)
    total = soft_total(jnp.arange(TOTALS)[:, None], jnp.arange(2)[None, :] == 1)
    bust = total > 21
    lose = jnp.where(~bust & (total > player), mass, 0.0).sum()
    draw = jnp.where(~bust & (total == player), mass, 0.0).sum()
    win = jnp.where(bust | (total < player), mass, 0.0).sum()
    return jnp.stack([lose, draw, win])


def step(state, action):
    player = jnp.round(state[0]).astype(jnp.int32)
    card = jnp.round(state[1]).astype(jnp.int32)
    usable = jnp.round(state[2]) == 1
    hit = jnp.asarray(action, jnp.int32) == 1
    hard = player - jnp.where(usable, 10, 0) + 10
    total = soft_total(hard, usable)
    bust = total > 21
    after_hit = jnp.stack([total.astype(jnp.float32), state[1], (usable & (hard + 10 <= 21)).astype(jnp.float32)])
    stick_reward = jnp.argmax(stick_probs(player, card)).astype(jnp.float32) - 1.0
    next_state = jnp.where(hit, after_hit, state)
    reward = jnp.where(hit, jnp.where(bust, -1.0, 0.0), stick_reward)
    done = jnp.where(hit, bust, True)
    return next_state.astype(jnp.float32), reward.astype(jnp.float32), done
