"""The registry of search methods, used by `cwm-jax synth` and by the benchmark.

One entry per method: its factory (spec, seed, ablations -> a harness
`Method`) and the ablation flags it accepts. `--no-fit` (programs keep the
constants the LLM wrote, as in the paper) is the harness's, so every method
accepts it, and so is `--paper-faithful` (the paper's search: GIF-MCTS's
value rule with no plateau rules, and improve prompts that show the first
failing transition only; docs/search.md). Adding a search method: its module
plus one entry here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping

from cwm_jax.envs import EnvSpec
from synth.search.baselines import WorldCoder, ZeroShot
from synth.search.gif_mcts import ALL_ACTIONS, GifMcts
from synth.search.protocol import Method

__all__ = ["HARNESS_FLAGS", "NO_FIT", "PAPER_FAITHFUL", "SEARCH_METHODS", "SearchMethod", "make_method"]

NO_FIT = "--no-fit"
PAPER_FAITHFUL = "--paper-faithful"
# Flags every method accepts (the run's, not the method's own ablations): flag -> what the run does.
HARNESS_FLAGS = {
    NO_FIT: "without the fit step (the paper)",
    PAPER_FAITHFUL: "the paper's search (no plateau rules, first counterexample only)",
}


@dataclasses.dataclass(frozen=True)
class SearchMethod:
    """A search method: how to build one, and its ablations (flag -> what the run lacks)."""

    name: str
    factory: Callable[..., Method]  # (spec, *, seed, ablations: frozenset[str], paper_faithful: bool) -> Method
    ablations: Mapping[str, str]

    @property
    def flags(self) -> dict[str, str]:
        """Every flag a run of it may carry: its ablations, `--no-fit` and `--paper-faithful`."""
        return {**self.ablations, **HARNESS_FLAGS}


def _gif_mcts(spec: EnvSpec, *, seed: int, ablations: frozenset[str], paper_faithful: bool) -> Method:
    actions = tuple(action for action in ALL_ACTIONS if f"--no-{action}" not in ablations)
    return GifMcts(spec, seed=seed, actions=actions, paper_faithful=paper_faithful)


def _worldcoder(spec: EnvSpec, *, seed: int, ablations: frozenset[str], paper_faithful: bool) -> Method:
    return WorldCoder(spec, seed=seed)


def _zero_shot(spec: EnvSpec, *, seed: int, ablations: frozenset[str], paper_faithful: bool) -> Method:
    return ZeroShot(spec, seed=seed)


SEARCH_METHODS: dict[str, SearchMethod] = {
    method.name: method
    for method in (
        SearchMethod("gif-mcts", _gif_mcts, {"--no-fix": "without the fix action", "--no-improve": "without improve"}),
        SearchMethod("worldcoder", _worldcoder, {}),
        SearchMethod("zero-shot", _zero_shot, {}),
    )
}


def make_method(name: str, spec: EnvSpec, *, seed: int, ablations: Iterable[str] = (),
                paper_faithful: bool = False) -> Method:
    """The search `name` for `spec`; ValueError for an unknown name or an ablation it does not have.

    `paper_faithful` is GIF-MCTS's exact value rule (the others have no value rule to change).
    """
    if name not in SEARCH_METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(SEARCH_METHODS)}")
    method = SEARCH_METHODS[name]
    ablations = frozenset(ablations)
    unknown = sorted(ablations - set(method.ablations))
    if unknown:
        raise ValueError(f"method {name!r} has no ablation {unknown[0]!r} (its ablations: "
                         f"{', '.join(method.ablations) or 'none'})")
    return method.factory(spec, seed=seed, ablations=ablations, paper_faithful=paper_faithful)
