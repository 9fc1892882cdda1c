"""GIF-MCTS and WorldCoder arithmetic with hand-built trees and a fake scorer: no server, no JAX call.

Every expected figure is computed by hand in a comment next to it, with
C = 0.1, epsilon = 1, priors generate 0.5 / improve 0.55 / fix 0.5 counted as
2 nodes each, L = 2 and f = 3 (synth/search/gif_mcts_values.py).
"""

from __future__ import annotations


import dataclasses
import json

import pytest

from cwm_jax import envs
from synth.search.baselines import WorldCoder
from synth.search.gif_mcts import GifMcts
from synth.search.gif_mcts_values import (
    MAX_FIXES,
    PRIOR_COUNT,
    UCT_C,
    UCT_EPSILON,
    ActionValueModel,
    NodeStats,
    buggy_value,
    uct_score,
)
from synth.search.harness import Harness
from synth.search.protocol import Request
from synth.search.node import Node, counterexample_key, first_failure

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


def test_every_working_node_offers_generate_whatever_made_it():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.5, "a"))
    b = expand(search, a.id, "improve", working(0.6, "b"))
    d = expand(search, expand(search, a.id, "improve", buggy()).id, "fix", working(0.7, "d"))
    # State = first (parent's state lines + L) lines: root 0 -> a 2 -> b and the buggy node 4 -> d 6.
    assert [search.stats[n.id].prefix.count("\n") + 1 for n in (a, b, d)] == [2, 4, 6]
    assert search.stats[b.id].prefix == "\n".join(b.program.splitlines()[:4])
    for node in (a, b, d):
        assert search.open_actions(node) == ["generate", "improve"]
    assert search.open_actions(search.nodes[0]) == ["generate"]


def test_uct_adds_the_exploration_bonus():
    search = GifMcts(SPEC)
    x = Node(id=1, parent=0, action="generate", program=program("x"), value=0.6, counterexample="c")
    y = Node(id=2, parent=0, action="generate", program=program("y"), value=0.58, counterexample="c")
    search.nodes[0].children = [1, 2]
    search.nodes += [x, y]
    search.stats[0] = NodeStats(visits=4, total=2.38)
    search.stats[1] = NodeStats(visits=3, total=1.8, prefix="LINE_0 = 0\nLINE_1 = 1")
    search.stats[2] = NodeStats(visits=1, total=0.58, prefix="LINE_0 = 0\nLINE_1 = 1")
    # At the root, ln 4 = 1.3863:
    #   x: 0.6  + 0.1 * sqrt(1.3863 / (3 + 1)) = 0.6  + 0.0589 = 0.6589
    #   y: 0.58 + 0.1 * sqrt(1.3863 / (1 + 1)) = 0.58 + 0.0833 = 0.6633   <- best only with +bonus
    #   generate slot: (0.5 * 0.5 + 0.5 * mean(0.6, 0.58)) + 0.1 * sqrt(1.3863 / (2 + 1)) = 0.545 + 0.068 = 0.613
    # At y (1 visit, ln 1 = 0): generate 0.5 (prior), improve 0.55 (prior) -> improve.
    path, action = search._select()
    assert (path, action) == ([0, 2], "improve")


def test_backup_adds_the_leaf_value_to_every_ancestor():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.5, "a"))
    b = expand(search, a.id, "improve", working(0.8, "b"))
    root = search.nodes[0]
    # b: 1 visit, 0.8. a: 0.5 + 0.8 = 1.3 over 2 visits. root: the same 1.3 over 2.
    assert visits_total(search, b) == (1, 0.8)
    assert visits_total(search, a) == (2, pytest.approx(1.3))
    assert visits_total(search, root) == (2, pytest.approx(1.3))
    assert search.node_value(a) == pytest.approx(0.65)


def test_buggy_leaf_backs_up_a_visit_only_and_never_its_temporary_value():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.5, "a"))
    c = expand(search, a.id, "improve", buggy())
    # c: temporary 0.99 * 3 / 3 = 0.99, 3 fixes left. a keeps its mean 0.5: total 0.5 + 0.5 = 1.0 over 2.
    c_stats = search.stats[c.id]
    assert (c_stats.fixes_left, c_stats.temp_value, search.node_value(c)) == (3, pytest.approx(0.99), pytest.approx(0.99))
    assert visits_total(search, a) == (2, pytest.approx(1.0))
    assert visits_total(search, search.nodes[0]) == (2, pytest.approx(1.0))


def test_a_failing_fix_chain_steps_down_and_dies():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.5, "a"))
    c = expand(search, a.id, "improve", buggy("c"))
    assert search.open_actions(c) == ["fix"]
    d = expand(search, c.id, "fix", buggy("d"))
    # One fix per buggy node: c's fix slot is taken. d has 2 fixes left: 0.99 * 2 / 3 = 0.66 for c and d.
    assert search.open_actions(c) == [] and search.open_actions(d) == ["fix"]
    stats = search.stats
    assert (stats[d.id].fixes_left, stats[c.id].temp_value, stats[d.id].temp_value) == (2, pytest.approx(0.66),
                                                                                        pytest.approx(0.66))
    e = expand(search, d.id, "fix", buggy("e"))
    assert [search.stats[n.id].temp_value for n in (c, d, e)] == pytest.approx([0.33, 0.33, 0.33])  # 0.99 * 1 / 3
    f = expand(search, e.id, "fix", buggy("f"))
    assert stats[f.id].fixes_left == 0 and all(stats[n.id].dead and stats[n.id].temp_value == 0 for n in (c, d, e, f))
    # Four buggy leaves backed up visits only: a's mean is still 0.5 (total 2.5 over 5 visits).
    assert visits_total(search, a) == (5, pytest.approx(2.5))


def test_a_successful_fix_gives_the_chain_its_value():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.5, "a"))
    c = expand(search, a.id, "improve", buggy("c"))
    expand(search, c.id, "fix", working(0.7, "d"))
    # c resolved: its total becomes 0.7 * 1 visit, then d's backup adds 0.7: 1.4 over 2 visits.
    # a: 0.5 + 0.5 (c's visit-only backup) + 0.7 = 1.7 over 3; root the same.
    assert search.stats[c.id].resolved and visits_total(search, c) == (2, pytest.approx(1.4))
    assert visits_total(search, a) == (3, pytest.approx(1.7))
    assert visits_total(search, search.nodes[0]) == (3, pytest.approx(1.7))


def test_value_model_learning_rate_and_weights():
    model = ActionValueModel()
    assert model.learning_rate("generate") == pytest.approx(1 / 3)  # 1 / (1 + c), c = 2
    model.update("generate", [0.667], 0.2)
    # v_G = 0.5, v_L = 0.667, prediction (0.5 * 0.5 + 0.5 * 0.667) / 1 = 0.5835, error 0.3835, rate 1/3:
    #   w_G = 0.5 - (1/3) * 2 * 0.3835 * (0.5   - 0.5835) = 0.5 + 0.021349 = 0.521349
    #   w_L = 0.5 - (1/3) * 2 * 0.3835 * (0.667 - 0.5835) = 0.5 - 0.021349 = 0.478651
    # global: (0.5 * 2 + 0.2) / 3 = 0.4
    stats = model.stats["generate"]
    assert stats.w_global == pytest.approx(0.521349, abs=1e-6)
    assert stats.w_local == pytest.approx(0.478651, abs=1e-6)
    assert model.global_value("generate") == pytest.approx(0.4)
    assert model.learning_rate("generate") == pytest.approx(1 / 4)
    # estimate: (0.521349 * 0.4 + 0.478651 * 0.9) / 1.0 = 0.208540 + 0.430786 = 0.639326
    assert model.estimate("generate", [0.9]) == pytest.approx(0.639326, abs=1e-6)
    model.update("improve", [], 0.3)  # no sibling: no weight moves, but the rate decays
    assert model.stats["improve"].w_global == 0.5 and model.learning_rate("improve") == pytest.approx(1 / 4)


def test_local_value_averages_backed_up_values_including_temporary_ones():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.5, "a"))
    expand(search, a.id, "improve", buggy("c"))
    expand(search, a.id, "improve", working(0.4, "b"))
    # The buggy improve child counts its temporary 0.99, as in the authors' get_local_value.
    assert search._local_values(a, "improve") == pytest.approx([0.99, 0.4])


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


def _drive(search: GifMcts, calls: int) -> list[str]:
    """A fake LLM: generate always gives the same imperfect program; improve gives a perfect one."""
    actions = []
    for _ in range(calls):
        request = search.propose()
        actions.append(request.action)
        node = working(1.0, "fixed") if request.action == "improve" else working(0.667, "same")
        node.parent, node.action = request.parent, request.action
        search.integrate(request, node)
        if search.solved:
            break
    return actions


def test_plateau_reaches_improve_within_three_calls():
    # Call 1: root -> generate a (0.667). Call 2: a's generate 0.5557 ((1 + 0.667) / 3) beats improve 0.55,
    # gives b, a repeat. Call 3: the global generate value drops to (1.667 + 0) / 4 = 0.417 and at b
    # (1 visit, no bonus) improve's 0.55 wins. Paper-faithful: (1.667 + 0.667) / 4 = 0.5835 > 0.55.
    assert _drive(GifMcts(SPEC), 3) == ["generate", "generate", "improve"]
    assert _drive(GifMcts(SPEC, paper_faithful=True), 3) == ["generate", "generate", "generate"]


def test_fit_child_is_backed_up_without_teaching_the_value_model():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.6, "a"))
    before = search.values.state_dict()
    fitted = working(0.9, "fitted")
    fitted.action = "fit"
    search.integrate_fit(a.id, fitted)
    # fit: 1 visit, 0.9. a: 0.6 + 0.9 = 1.5 over 2; root the same. Its state keeps a's 2 lines.
    assert fitted.parent == a.id and visits_total(search, fitted) == (1, 0.9)
    assert visits_total(search, a) == (2, pytest.approx(1.5)) and search.stats[0].total == pytest.approx(1.5)
    assert search.stats[fitted.id].prefix == search.stats[a.id].prefix and search.values.state_dict() == before
    # The next call improves the fitted program. Root (ln 2 = 0.693): a 0.75 + 0.1 * sqrt(0.693 / 3) = 0.798
    # beats the generate slot (0.533 + 0.75) / 2 + 0.0589 = 0.700. At a: fit child 0.9 + 0.0589 = 0.959 beats
    # improve 0.55 + 0.083 and generate 0.533 + 0.083. At the fit node (1 visit): improve 0.55 > generate 0.533.
    request = search.propose()
    assert (request.parent, request.action, request.program) == (fitted.id, "improve", fitted.program)


def test_worldcoder_samples_programs_from_their_beta_posteriors():
    def pick_rate(r_high: float, r_low: float, draws: int = 2000) -> float:
        search = WorldCoder(SPEC, seed=1)
        for value in (r_high, r_low):
            node = working(value, str(value))
            node.id, node.parent, node.action = len(search.nodes), 0, "generate"
            search.nodes.append(node)
        picks = [search.propose().parent for _ in range(draws)]
        return picks.count(1) / draws

    # P(Beta(1 + 5 * 0.9, 1 + 5 * 0.1) > Beta(1 + 5 * 0.1, 1 + 5 * 0.9)) = 0.9913 and
    # P(Beta(4, 3) > Beta(3.5, 3.5)) = 0.6128 (numerical integration of pdf_X * cdf_Y);
    # 2000 draws: standard error 0.011, so +-0.04 is over 3.5 sigma. An argmax would give 1.0 for both.
    assert pick_rate(0.9, 0.1) == pytest.approx(0.9913, abs=0.01)
    assert pick_rate(0.6, 0.5) == pytest.approx(0.6128, abs=0.04)


def test_worldcoder_updates_the_picked_programs_posterior():
    search = WorldCoder(SPEC, seed=0)
    a = working(0.5, "a")
    a.id, a.parent, a.action = 1, 0, "generate"
    search.nodes.append(a)
    request = search.propose()  # the only program
    assert (request.parent, request.action, request.program) == (1, "improve", a.program)
    for value, expected in ((0.8, (1.0, 2.0)), (1.0, (2.0, 2.0))):
        search.inflight += 1
        child = working(value, f"child{value}")
        child.parent, child.action = 1, "improve"
        search.integrate(request, child)
        posterior = search.posterior(a.id)
        assert (posterior.alpha, posterior.beta) == expected  # beta += 1 for an imperfect child, alpha += 1 for a perfect one


def test_worldcoder_fixes_a_buggy_program():
    search = WorldCoder(SPEC, seed=0)
    c = buggy("c")
    c.id, c.parent, c.action = 1, 0, "generate"
    search.nodes.append(c)
    request = search.propose()
    assert (request.action, request.feedback) == ("fix", "line 3: boom")


def test_actions_must_include_generate_and_be_known():
    for actions in (("improve", "fix"), ("generate", "rewrite")):  # no generate; an unknown action
        with pytest.raises(ValueError, match="actions must include 'generate'"):
            GifMcts(SPEC, actions=actions)
    assert GifMcts(SPEC, actions=("generate", "improve")).actions == ("generate", "improve")


def test_a_dead_end_is_marked_dead_unless_its_own_call_is_in_flight():
    search = GifMcts(SPEC)
    # a: 2 lines, all in its state (no generate), no counterexample (no improve): nothing to expand.
    a = expand(search, 0, "generate", Node(id=-1, parent=None, action="", program="A = 1\nB = 2\n",
                                           value=0.9, fingerprint="a"))
    assert search.open_actions(a) == []
    search.stats[0].visits += 1  # a generate call in flight at the root, as propose() leaves it
    search.pending[(0, "generate")] = 1
    # Root (2 visits, ln 2 = 0.6931): a 0.9 + 0.1 * sqrt(0.6931 / 2) = 0.959 beats the generate slot
    # (0.5 * (1.9 / 3) + 0.5 * 0.9) + 0.1 * sqrt(0.6931 / (1 child + 1 pending + 1)) = 0.7667 + 0.0481 = 0.815.
    # a has no options and no call of its own in flight (the one in flight is the root's): a dies and
    # selection restarts at the root, where only the generate slot is left.
    assert search._select() == ([0], "generate") and search.stats[a.id].dead

    search = GifMcts(SPEC)
    c = expand(search, 0, "generate", buggy("c"))
    for node_id in (0, c.id):  # c's fix in flight
        search.stats[node_id].visits += 1
    search.pending[(c.id, "fix")] = 1
    # Root (ln 2): c's temporary 0.99 + 0.1 * sqrt(0.6931 / 3) = 1.038 beats the generate slot
    # (0.5 * (1.0 / 3) + 0.5 * 0.99) + 0.1 * sqrt(0.6931 / 2) = 0.6617 + 0.0589 = 0.721. c offers nothing
    # while its fix is in flight: the search waits for it and c stays alive.
    assert search._select() is None and not search.stats[c.id].dead


def test_calls_in_flight_are_counted_per_slot_and_released_on_return():
    search = GifMcts(SPEC)
    first, second = search.propose(), search.propose()  # the root offers generate only
    assert (first.action, second.action) == ("generate", "generate")
    assert search.pending == {(0, "generate"): 2} and search.stats[0].visits == 2  # two virtual visits
    for request, tag in ((first, "a"), (second, "b")):
        node = working(0.5, tag)
        node.parent, node.action = 0, "generate"
        search.integrate(request, node)
    assert search.pending == {} and search.stats[0].visits == 2  # two real visits


def test_only_a_perfect_fit_solves_the_search():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.6, "a"))
    search.integrate_fit(a.id, working(0.9, "fit9"))
    assert not search.solved  # 0.9 < 1
    search.integrate_fit(a.id, working(1.0, "fit10"))
    assert search.solved


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


def test_a_resumed_search_selects_as_the_original_would():
    search = GifMcts(SPEC, seed=3)
    expand(search, 0, "generate", working(0.5, "a"))
    expand(search, 0, "generate", working(0.48, "b"))
    search.rng.random()  # move the random state away from the seed's
    resumed = GifMcts(SPEC, seed=4)
    resumed.load_state_dict(json.loads(json.dumps(search.state_dict())))  # as checkpoint.json stores it
    # (JSON gives new string objects: action names must be compared by value, not identity.)
    assert resumed.rng.getstate() == search.rng.getstate()
    # generate: global (0.5 * 2 + 0.5 + 0.48) / 4 = 0.495 (the second update had error 0.02 but
    # v_G = prediction, so no weight moved); estimate 0.5 * 0.495 + 0.5 * mean(0.5, 0.48) = 0.4925.
    # Root (ln 2 = 0.6931): a 0.5 + 0.1 * sqrt(0.6931 / 2) = 0.5589, b 0.48 + 0.0589 = 0.5389,
    # generate slot with 2 same-type children 0.4925 + 0.1 * sqrt(0.6931 / 3) = 0.5406 -> a.
    # (Counting 0 same-type children would give the slot 0.4925 + 0.0833 = 0.5758.)
    # At a (1 visit, ln 1 = 0): improve 0.55 beats generate 0.495.
    assert search._select() == resumed._select() == ([0, 1], "improve")


def test_log_record_of_the_root_a_backed_up_node_and_a_buggy_one():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.5, "a"))
    expand(search, a.id, "improve", working(0.8, "b"))
    c = expand(search, a.id, "improve", buggy("c"))
    root = search.nodes[0].log_record("", search.log_fields(search.nodes[0]))
    # The root: no program, no call: value 0, 0 seconds; backed up (0.5 + 0.8 + 0.65) / 3 = 0.65
    # (the buggy leaf adds a visit at the mean: 1.3 + 1.3 / 2).
    assert (root["value"], root["seconds"], root["backed_up_value"]) == (0.0, 0.0, pytest.approx(0.65))
    record = c.log_record(a.program, search.log_fields(c))
    assert (record["value"], record["backed_up_value"], record["temp_value"]) == (0.0, 0.0, pytest.approx(0.99))
    assert NodeStats().log_fields()["backed_up_value"] is None  # never visited
    # The shared record holds no method's statistics: they come from the method.
    assert "visits" not in c.log_record(a.program) and "visits" not in dataclasses.asdict(c)


def test_value_model_keeps_weights_positive():
    model = ActionValueModel()
    model.stats["generate"].w_local = 0.01  # a hand-set state, as a checkpoint could hold
    model.update("generate", [1.0], 0.0)
    # v_G = 0.5, v_L = 1, weight 0.51, prediction (0.25 + 0.01) / 0.51 = 0.509804, error 0.509804, rate 1/3:
    #   w_G = 0.5  - (1/3) * 2 * 0.509804 * (0.5 - 0.509804) / 0.51 = 0.5 + 0.006533 = 0.506533
    #   w_L = 0.01 - (1/3) * 2 * 0.509804 * (1.0 - 0.509804) / 0.51 = 0.01 - 0.326667 < 0 -> floor 1e-3
    stats = model.stats["generate"]
    assert stats.w_global == pytest.approx(0.506533, abs=1e-6) and stats.w_local == 1e-3
    # estimate: v_G = (1.0 + 0) / 3 = 0.333333; (0.506533 * 0.333333 + 0.001 * 1) / 0.507533 = 0.334647
    # (a negative w_L would extrapolate below v_G: (0.168844 - 0.316667) / 0.189866 < 0, clipped to 0).
    assert model.estimate("generate", [1.0]) == pytest.approx(0.334647, abs=1e-6)


def test_uct_score_uses_the_papers_constants():
    assert (UCT_C, UCT_EPSILON) == (0.1, 1.0)  # paper, Table 4
    # 0.5 + 0.1 * sqrt(ln 4 / (1 + 1)) = 0.5 + 0.1 * sqrt(0.693147) = 0.5 + 0.083255
    assert uct_score(0.5, 4, 1) == pytest.approx(0.583255, abs=1e-6)
    # A slot with 2 same-type siblings under 10 visits: 0.3 + 0.1 * sqrt(2.302585 / 3) = 0.3 + 0.087609
    assert uct_score(0.3, 10, 2) == pytest.approx(0.387609, abs=1e-6)
    assert uct_score(0.7, 1, 0) == uct_score(0.7, 0, 0) == 0.7  # ln 1 = 0; an unvisited parent counts as 1


def test_unexpanded_actions_start_at_the_papers_priors():
    model = ActionValueModel()
    assert PRIOR_COUNT == 2
    assert {a: model.estimate(a, []) for a in ("generate", "improve", "fix")} == {
        "generate": 0.5, "improve": 0.55, "fix": 0.5}  # paper, Table 4 (fix 0.5 from the authors' code)
    model.update("improve", [], 1.0)
    assert model.global_value("improve") == pytest.approx((0.55 * 2 + 1.0) / 3)  # the prior counts as 2 nodes


def test_a_buggy_node_is_worth_its_fixes_left():
    assert MAX_FIXES == 3
    # linspace(0, 0.99, f + 1)[fixes_left]: a fresh bug 0.99, then 0.66, 0.33 and 0 when no fix is left.
    assert [buggy_value(k) for k in (3, 2, 1, 0)] == pytest.approx([0.99, 0.66, 0.33, 0.0])


def test_backup_updates_the_whole_path_to_the_root_and_nothing_else():
    search = GifMcts(SPEC)
    a = expand(search, 0, "generate", working(0.2, "a"))
    b = expand(search, a.id, "improve", working(0.4, "b"))
    off_path = expand(search, a.id, "improve", working(0.3, "off"))
    c = expand(search, b.id, "improve", working(0.6, "c"))
    before = {n.id: visits_total(search, n) for n in search.nodes}
    leaf = expand(search, c.id, "improve", working(0.9, "leaf"))
    # The leaf: 1 visit, 0.9. Every node from c up to the root: one more visit and 0.9 more; off_path untouched.
    assert visits_total(search, leaf) == (1, 0.9)
    for node in (c, b, a, search.nodes[0]):
        visits, total = before[node.id]
        assert visits_total(search, node) == (visits + 1, pytest.approx(total + 0.9))
    assert visits_total(search, off_path) == before[off_path.id] == (1, 0.3)


def _format_2_checkpoint() -> tuple[dict, GifMcts]:
    """A GIF-MCTS checkpoint as format 2 wrote it (statistics inside the node records), and the search it holds.

    The tree of `test_format_2_checkpoints_resume`: a (0.5) under the root, a buggy improve child c under a.
    """
    method_fields = dict(fixes_left=3, dead=False, resolved=False, alpha=1.0, beta=1.0)
    nodes = [
        dict(id=0, parent=None, action="root", children=[1], prefix="", visits=2, total=1.0, temp_value=None,
             **method_fields),
        dict(id=1, parent=0, action="generate", program=program("a"), value=0.5, fingerprint="a",
             counterexample="Transition #0 is predicted wrongly.", children=[2], prefix="LINE_0 = 0\nLINE_1 = 1",
             visits=2, total=1.0, temp_value=None, **method_fields),
        dict(id=2, parent=1, action="improve", program=program("c"), buggy=True, error="line 3: boom", children=[],
             prefix="LINE_0 = 0\nLINE_1 = 1\nLINE_2 = 2\nLINE_3 = 3", visits=1, total=0.0, temp_value=0.99 * 3 / 3,
             **method_fields),
    ]
    original = GifMcts(SPEC, seed=3)
    expand(original, 0, "generate", working(0.5, "a"))
    expand(original, 1, "improve", buggy("c"))
    return {"version": 2, "method": "gif-mcts", "harness": Harness(None, None, budget=1).state_dict(),
            "search": {**{k: v for k, v in original.state_dict().items() if k not in ("nodes", "stats")},
                       "nodes": nodes}}, original


def test_format_2_checkpoints_resume(tmp_path):
    payload, original = _format_2_checkpoint()
    (tmp_path / "checkpoint.json").write_text(json.dumps(payload))
    resumed = GifMcts(SPEC, seed=9)
    assert Harness(None, None, budget=1, out_dir=tmp_path).resume(resumed)
    assert resumed.stats == original.stats and resumed.nodes == original.nodes
    assert resumed._select() == original._select()
    worldcoder = WorldCoder(SPEC)
    worldcoder.load_state_dict({**payload["search"], "nodes": [
        {**n, "alpha": 3.0} if n["id"] == 1 else n for n in payload["search"]["nodes"]]})
    assert (worldcoder.posterior(1).alpha, worldcoder.posterior(1).beta) == (3.0, 1.0)


# -- issue 22: repeats against the whole tree, the escape to improve, the prefix prompt ------------------


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


def _plateau_drive(search: GifMcts, calls: int) -> list[str]:
    """A confident model: generate rewrites the program (new text and fingerprint, the same 0.988 and
    the same first failure); improve, shown the counterexample, gets it right."""
    actions = []
    for k in range(calls):
        request = search.propose()
        actions.append(request.action)
        node = working(1.0, "fixed") if request.action == "improve" else working(0.988, f"rewrite {k}")
        node.parent, node.action = request.parent, request.action
        search.integrate(request, node)
        if search.solved:
            break
    return actions


def test_after_a_plateau_the_next_call_improves_unless_paper_faithful():
    # Call 2 is a generate at a (v_G (1 + 0.988) / 3 = 0.663 > 0.55), a repeat of a by value and first
    # failure: the escape makes call 3 an improve of a. The paper's search generates on (its v_G stays
    # (1 + 0.988 k) / (2 + k) > 0.55).
    search = GifMcts(SPEC)
    assert _plateau_drive(search, 5) == ["generate", "generate", "improve"] and search.solved
    assert search.nodes[3].parent == 1 and search.escape is None
    assert _plateau_drive(GifMcts(SPEC, paper_faithful=True), 5) == ["generate"] * 5


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
