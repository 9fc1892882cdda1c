"""Hand-written reference CWM for gymnasium's Blackjack-v1, with chance (written by the cwm-jax authors, not by an LLM).

State: the observation [player's sum, dealer's showing card (1 = ace), usable
ace (0/1)]. Afterstate: [sum, showing card, usable ace, action]. Ten outcomes:
a hit (action 1) draws the card `chance + 1` (an ace is 1; tens and face
cards are 10, four of the 13 ranks of an infinite deck); a stick (action 0)
ends the game with outcome 0 (lose, -1), 1 (draw, 0) or 2 (win, +1), at the
probabilities of the dealer playing out from the showing card: the hidden
card and every further card drawn while the dealer's total is below 17, an
ace counted as 11 while that keeps the total at 21 or less.
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


def safe_log(p):
    return jnp.where(p > 0.0, jnp.log(jnp.maximum(p, 1e-30)), -jnp.inf)


def afterstate(state, action):
    return jnp.array([state[0], state[1], state[2], jnp.asarray(action, jnp.float32)], dtype=jnp.float32)


def chance_log_probs(afterstate):
    player = jnp.round(afterstate[0]).astype(jnp.int32)
    card = jnp.round(afterstate[1]).astype(jnp.int32)
    hit = jnp.round(afterstate[3]) == 1
    stick = jnp.concatenate([stick_probs(player, card), jnp.zeros(7, dtype=jnp.float32)])
    return safe_log(jnp.where(hit, card_probs(), stick))


def outcome(afterstate, chance):
    player = jnp.round(afterstate[0]).astype(jnp.int32)
    usable = jnp.round(afterstate[2]) == 1
    hit = jnp.round(afterstate[3]) == 1
    card = chance + 1
    hard = player - jnp.where(usable, 10, 0) + card
    ace = usable | (card == 1)
    total = soft_total(hard, ace)
    bust = total > 21
    soft = ace & (hard + 10 <= 21)
    after_hit = jnp.stack([total.astype(jnp.float32), afterstate[1], soft.astype(jnp.float32)])
    next_state = jnp.where(hit, after_hit, afterstate[:3])
    reward = jnp.where(hit, jnp.where(bust, -1.0, 0.0), jnp.clip(chance, 0, 2) - 1.0)
    done = jnp.where(hit, bust, True)
    return next_state.astype(jnp.float32), reward.astype(jnp.float32), done
