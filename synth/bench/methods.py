"""The benchmark's methods: the search methods of the registry (`synth.search.methods`), and two without an LLM.

A column of the table is a method plus variant flags, e.g. "gif-mcts --no-fix":
the flags of a search method are its ablations, `--no-fit` and
`--paper-faithful`. `reference`
takes the env's hand-written CWM (the offline upper bound); `fit-only` takes
the reference CWM of the base env and fits its constants to the data.
"""

from __future__ import annotations

import dataclasses

from cwm_jax.errors import UsageError
from synth.search.methods import HARNESS_FLAGS, NO_FIT, PAPER_FAITHFUL, SEARCH_METHODS

__all__ = ["FIT_ONLY", "METHOD_KINDS", "NO_FIT", "REFERENCE", "BenchMethod", "MethodKind", "parse_method"]

REFERENCE = "reference"
FIT_ONLY = "fit-only"


@dataclasses.dataclass(frozen=True)
class MethodKind:
    """A method the benchmark can run, with the variant flags it accepts (flag -> meaning)."""

    name: str
    needs_llm: bool
    flags: dict[str, str] = dataclasses.field(default_factory=dict)


METHOD_KINDS: dict[str, MethodKind] = {
    **{method.name: MethodKind(method.name, True, method.flags) for method in SEARCH_METHODS.values()},
    REFERENCE: MethodKind(REFERENCE, False),
    FIT_ONLY: MethodKind(FIT_ONLY, False),
}


@dataclasses.dataclass(frozen=True)
class BenchMethod:
    """One column of the table: a method name plus variant flags, e.g. "gif-mcts --no-fix"."""

    name: str
    flags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return " ".join((self.name, *self.flags))

    @property
    def slug(self) -> str:
        return "_".join((self.name, *(f.lstrip("-") for f in self.flags)))

    @property
    def kind(self) -> MethodKind:
        return METHOD_KINDS[self.name]

    @property
    def ablations(self) -> tuple[str, ...]:
        """The flags that are the search method's own ablations (all but --no-fit and --paper-faithful)."""
        return tuple(flag for flag in self.flags if flag not in HARNESS_FLAGS)

    @property
    def fits(self) -> bool:
        """Whether the search fits the constants of its programs (no --no-fit)."""
        return NO_FIT not in self.flags

    @property
    def paper_faithful(self) -> bool:
        """Whether the search is the paper's (`--paper-faithful`: no plateau rules, first counterexample only)."""
        return PAPER_FAITHFUL in self.flags


def parse_method(text: str) -> BenchMethod:
    """'gif-mcts --no-fix' -> BenchMethod; a clear UsageError for unknown names or flags."""
    name, *flags = text.split()
    if name not in METHOD_KINDS:
        raise UsageError(f"unknown method {name!r}; choose from {', '.join(METHOD_KINDS)}")
    kind = METHOD_KINDS[name]
    for flag in flags:
        if flag not in kind.flags:
            known = ", ".join(kind.flags) or "none"
            raise UsageError(f"method {name!r} has no flag {flag!r} (its flags: {known})")
    return BenchMethod(name, tuple(sorted(set(flags))))
