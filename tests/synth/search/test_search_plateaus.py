"""GIF-MCTS on a plateau: repeats anywhere in the tree are no progress, the escape to improve, the prefix prompt.

Hand-built trees and a fake scorer, as in test_synth_search.py (its constants apply).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from synth.search.gif_mcts import GifMcts
from synth.search.node import Node, counterexample_key, first_failure
from tests.synth.search.search_support import SPEC, buggy, expand, working


def drive(search: GifMcts, calls: int, generated: Callable[[int], Node]) -> list[str]:
    """A fake LLM: call k's generate gives `generated(k)`; an improve, shown the counterexample, gets it right."""
    actions = []
    for k in range(calls):
        request = search.propose()
        actions.append(request.action)
        node = working(1.0, "fixed") if request.action == "improve" else generated(k)
        node.parent, node.action = request.parent, request.action
        search.integrate(request, node)
        if search.solved:
            break
    return actions


def same_program(k: int) -> Node:
    """Generate always gives the same imperfect program."""
    return working(0.667, "same")


def rewritten_program(k: int) -> Node:
    """A confident model: generate rewrites the program (new text and fingerprint, the same 0.988 and the same
    first failure)."""
    return working(0.988, f"rewrite {k}")


def test_a_repeat_is_no_progress_for_its_action():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.667, "a"))
    same_text = working(0.667, "a", fingerprint="other")
    same_text.program = "# a comment\n" + a.program.replace(" = ", "=")  # same after normalisation
    b = expand(search, a.id, "generate", same_text)
    c = expand(search, a.id, "generate", working(0.667, "c", fingerprint="a"))  # same predictions as a
    d = expand(search, a.id, "generate", working(0.7, "d"))
    assert (b.repeat_of, c.repeat_of, d.repeat_of) == (a.id, a.id, None)
    # global generate value: (0.5 * 2 + 0.667 + 0 + 0 + 0.7) / 6 = 2.367 / 6 = 0.3945
    assert search.values.global_value("generate") == pytest.approx(2.367 / 6)
    assert search._local_values(a, "generate") == pytest.approx([0.0, 0.0, 0.7])
    # Repeats keep their own value in the tree: a's total 0.667 * 3 + 0.7 = 2.701 over 4 visits.
    assert search.stats[a.id].total == pytest.approx(2.701)


def test_plateau_reaches_improve_within_three_calls():
    # Call 1: root -> generate a (0.667). Call 2: a's generate 0.5557 ((1 + 0.667) / 3) beats improve 0.55,
    # gives b, a repeat. Call 3: the global generate value drops to (1.667 + 0) / 4 = 0.417 and at b
    # (1 visit, no bonus) improve's 0.55 wins. Paper-faithful: (1.667 + 0.667) / 4 = 0.5835 > 0.55.
    assert drive(GifMcts(SPEC), 3, same_program) == ["generate", "generate", "improve"]
    assert drive(GifMcts(SPEC, paper_faithful=True), 3, same_program) == ["generate", "generate", "generate"]


def test_a_buggy_sibling_with_the_same_text_is_not_repeated():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.5, "a"))
    bug = expand(search, a.id, "improve", buggy("b"))  # e.g. rejected for a docstring longer than 64 characters
    same = working(0.7, "b")
    same.program = bug.program  # the same text works the second time: it is progress, not a repeat
    expand(search, a.id, "improve", same)
    assert same.repeat_of is None
    # improve's global value: (0.55 * 2 + 0 (buggy) + 0.7) / 4 = 1.8 / 4 = 0.45 (a repeat would count 0: 0.275)
    assert search.values.global_value("improve") == pytest.approx(0.45)


def test_a_repeat_is_found_anywhere_in_the_tree_not_only_among_parent_and_siblings():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.6, "a"))
    b = expand(search, 0, "generate", working(0.5, "b"))
    c = expand(search, b.id, "improve", working(0.6, "c", fingerprint="a"))  # a's predictions, under b
    d = expand(search, c.id, "improve", working(0.7, "a", fingerprint="d"))  # a's text, two levels down
    assert (c.repeat_of, d.repeat_of) == (a.id, a.id)


def test_a_generate_child_with_its_parents_value_and_first_failure_is_a_repeat():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.6, "a"))
    same = expand(search, a.id, "generate", working(0.6, "b"))  # other text and fingerprint
    elsewhere = working(0.6, "c")
    elsewhere.counterexample = "Transition #7 is predicted wrongly."
    other = expand(search, a.id, "generate", elsewhere)
    improved = expand(search, a.id, "improve", working(0.6, "d"))  # an improve was shown the failure
    assert (same.repeat_of, other.repeat_of, improved.repeat_of) == (a.id, None, None)


def test_counterexample_keys_ignore_float_noise_and_signed_zeros():
    first = ("Transition #2072 is predicted wrongly (next_state wrong).\n"
             "  expected next_state:  [-1.2, -0.0310843]\n  predicted next_state: [-1.2, {}]")
    keys = {counterexample_key(first.format(v) + tail)
            for v in ("0", "-0", "1e-12", "-0.0") for tail in ("", "\n\nMore transitions it gets wrong: ...")}
    assert len(keys) == 1
    assert counterexample_key(first.format("0.0001")) not in keys
    assert first_failure(first.format("0")) == 2072 and first_failure("") is None


def test_after_a_plateau_the_next_call_improves_unless_paper_faithful():
    # Call 2 is a generate at a (v_G (1 + 0.988) / 3 = 0.663 > 0.55), a repeat of a by value and first
    # failure: the escape makes call 3 an improve of a. The paper's search generates on (its v_G stays
    # (1 + 0.988 k) / (2 + k) > 0.55).
    search = GifMcts(SPEC)
    assert drive(search, 5, rewritten_program) == ["generate", "generate", "improve"] and search.solved
    assert search.nodes[3].parent == 1 and search.escape is None
    assert drive(GifMcts(SPEC, paper_faithful=True), 5, rewritten_program) == ["generate"] * 5


def test_an_improve_no_better_than_its_parent_forces_nothing():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.6, "a"))
    expand(search, a.id, "improve", working(0.5, "b"))
    assert search.escape is None
    expand(search, a.id, "generate", working(0.55, "c"))  # no better than a: the next call improves a
    assert search.escape == a.id
    state = json.loads(json.dumps(search.state_dict()))
    resumed = GifMcts(SPEC)
    resumed.load_state_dict(state)
    request = resumed.propose()
    assert (request.parent, request.action, request.feedback) == (a.id, "improve", a.counterexample)


def test_the_prefix_prompt_says_what_the_earlier_program_scored_and_where_it_failed():
    def prefix_prompt(search: GifMcts) -> str:
        a = expand(search, 0, "generate", working(0.988, "a"))
        request = search.propose()  # at a: generate (1 + 0.988) / 3 = 0.663 beats improve 0.55
        assert (request.parent, request.action) == (a.id, "generate")
        return request.messages[-1]["content"]

    text = prefix_prompt(GifMcts(SPEC))
    assert "Start your program with exactly these lines" in text
    assert "scored 0.988" in text and "Transition #0 is predicted wrongly." in text
    assert "scored" not in prefix_prompt(GifMcts(SPEC, paper_faithful=True))


def test_the_improve_prompt_asks_for_likelihood_where_the_world_is_random():
    from cwm_jax import envs
    from synth import prompts

    feedback = "Transition #3 is impossible under the model."
    random_world = prompts.improve(envs.env_spec("gymnax/SlipperyGrid"), "x = 1", feedback)[-1]["content"]
    fixed_world = prompts.improve(envs.env_spec("gymnax/CartPole"), "x = 1", feedback)[-1]["content"]
    assert "probability the program gives to what was recorded" in random_world and feedback in random_world
    assert "probabilit" not in fixed_world and "predicts this recorded transition of the real\nenvironment wrongly" \
        in fixed_world
