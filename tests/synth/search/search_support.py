"""Hand-built nodes and trees that the GIF-MCTS test modules share (no server, no JAX call)."""

from __future__ import annotations

from cwm_jax import envs
from synth.search.gif_mcts import GifMcts
from synth.search.node import Node
from synth.search.protocol import Request

SPEC = envs.env_spec("gymnax/CartPole")
PROGRAM = "".join(f"LINE_{k} = {k}\n" for k in range(8))  # 8 lines: room for generate children


def program(tag: str) -> str:
    return PROGRAM + f"TAG = {tag!r}\n"


def working(value: float, tag: str = "a", *, fingerprint: str = "") -> Node:
    return Node(id=-1, parent=None, action="", program=program(tag), value=value,
                counterexample="Transition #0 is predicted wrongly.", fingerprint=fingerprint or tag)


def buggy(tag: str = "bug") -> Node:
    return Node(id=-1, parent=None, action="", program=program(tag), buggy=True, error="line 3: boom")


def visits_total(search: GifMcts, node: Node) -> tuple[int, float]:
    """The backed-up statistics GIF-MCTS keeps of `node` (by id, not in the shared record)."""
    stats = search.stats[node.id]
    return stats.visits, stats.total


def expand(search: GifMcts, parent: int, action: str, node: Node) -> Node:
    """Expands `parent` by `action` as propose() would (virtual visits, pending slot), then integrates."""
    path, walk = [], parent
    while walk is not None:
        path.append(walk)
        walk = search.nodes[walk].parent
    path.reverse()
    for node_id in path:
        search.stats[node_id].visits += 1
    search.pending[(parent, action)] = search.pending.get((parent, action), 0) + 1
    node.parent, node.action = parent, action
    search.integrate(Request(parent=parent, action=action, messages=[], ticket=path), node)
    return node
