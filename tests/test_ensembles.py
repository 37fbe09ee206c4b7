"""Ensembles page: combiners on hand-made probabilities, a small trained ensemble's claims, the page."""

from __future__ import annotations

import numpy as np
import pytest

from core import ensembles as E

PAGE = "pages/24_Ensembles.py"
NOOP = lambda *a, **k: None  # noqa: E731

# --- combiners on hand-made probabilities ------------------------------------------------------


def _probs(*members):
    return np.array(members, dtype=np.float64)


def test_soft_average_is_the_plain_mean_of_the_members():
    p = _probs([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]],
               [[0.3, 0.6, 0.1], [0.2, 0.2, 0.6]],
               [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    expected = np.array([[(0.7 + 0.3 + 0.5) / 3, (0.2 + 0.6 + 0.0) / 3, (0.1 + 0.1 + 0.5) / 3],
                         [(0.1 + 0.2 + 0.0) / 3, (0.1 + 0.2 + 1.0) / 3, (0.8 + 0.6 + 0.0) / 3]])
    np.testing.assert_allclose(E.soft_average(p), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        E.soft_average(np.zeros((2, 3)))


def test_majority_vote_counts_top1_and_can_differ_from_averaging():
    # two unsure members say class 1, one very sure member says class 0
    p = _probs([[0.40, 0.45, 0.15]], [[0.35, 0.40, 0.25]], [[0.98, 0.01, 0.01]])
    np.testing.assert_array_equal(E.votes(p), [[1, 2, 0]])
    assert E.hard_vote(p).tolist() == [1]  # two votes beat one
    assert E.soft_average(p).argmax(1).tolist() == [0]  # the confident member outweighs them


def test_vote_ties_go_to_higher_average_probability_then_lower_index():
    # 1-1 tie between classes 2 and 0: class 0 has the higher mean probability
    p = _probs([[0.30, 0.10, 0.60]], [[0.90, 0.05, 0.05]])
    assert E.hard_vote(p).tolist() == [0]
    # 1-1-1 three-way tie with equal mean probabilities: the lowest class index wins
    q = _probs([[0.5, 0.25, 0.25]], [[0.25, 0.5, 0.25]], [[0.25, 0.25, 0.5]])
    assert E.hard_vote(q).tolist() == [0]
    # a 2-1 majority is never overruled by the average
    r = _probs([[0.34, 0.33, 0.33]], [[0.34, 0.33, 0.33]], [[0.0, 1.0, 0.0]])
    assert E.hard_vote(r).tolist() == [0] and E.soft_average(r).argmax(1).tolist() == [1]


def test_nll_ece_by_hand_and_averaging_never_worsens_mean_log_loss():
    p = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 1])
    assert E.nll(p, y) == pytest.approx(-(np.log(0.8) + np.log(0.4) + np.log(0.7)) / 3)
    # bins of width 0.1: conf 0.8 (right), 0.6 (wrong), 0.7 (right)
    assert E.ece(p, y) == pytest.approx((abs(1 - 0.8) + abs(0 - 0.6) + abs(1 - 0.7)) / 3)
    rng = np.random.default_rng(0)
    members = rng.dirichlet(np.ones(6), size=(5, 200))
    labels = rng.integers(0, 6, 200)
    assert E.nll(E.soft_average(members), labels) <= np.mean([E.nll(m, labels) for m in members])  # Jensen


def test_size_curve_averages_over_every_subset():
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(4), size=(4, 50))
    y = rng.integers(0, 4, 50)
    curve = {(r["members"], r["combiner"]): r for r in E.size_curve(p, y)}
    member_acc = [E.accuracy(m.argmax(1), y) for m in p]
    assert curve[(1, "soft average")]["accuracy"] == pytest.approx(np.mean(member_acc))
    assert curve[(1, "majority vote")]["min"] == min(member_acc)
    assert curve[(4, "soft average")]["accuracy"] == E.accuracy(E.soft_average(p).argmax(1), y)
    assert curve[(4, "majority vote")]["accuracy"] == E.accuracy(E.hard_vote(p), y)
    assert [curve[(k, "soft average")]["subsets"] for k in (1, 2, 3, 4)] == [4, 6, 4, 1]
    # with two members a vote is a 2-0 agreement or a 1-1 tie settled by the average of the two
    # voted classes (the plain average may still pick a third class that neither member voted for)
    pair = p[:2]
    tops = pair.argmax(2)
    mean = E.soft_average(pair)
    settled = np.where(mean[np.arange(50), tops[0]] >= mean[np.arange(50), tops[1]], tops[0], tops[1])
    settled = np.where((tops[0] != tops[1]) & (mean[np.arange(50), tops[0]] == mean[np.arange(50), tops[1]]),
                       tops.min(0), settled)
    np.testing.assert_array_equal(E.hard_vote(pair), settled)


def test_disagreement_table_partitions_the_examples():
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(6), size=(3, 120))
    y = rng.integers(0, 6, 120)
    rows = E.disagreement_table(p, y)
    assert sum(r["examples"] for r in rows) == 120
    assert [r["agree"] for r in rows] == sorted((r["agree"] for r in rows), reverse=True)
    wrong = (E.soft_average(p).argmax(1) != y).sum()
    assert sum(r["errors"] for r in rows) == wrong
    split = E.agreement_split(p, y)
    assert rows[0]["agree"] == 3 and rows[0]["examples"] == split["unanimous"]
    assert split["unanimous"] + split["split"] == 120


def test_tta_views_keep_size_flip_and_shift_without_wrapping():
    import torch

    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    views = E.tta_views(x)
    assert len(views) == len(E.TTA_VIEWS) and all(v.shape == x.shape for v in views)
    assert torch.equal(views[1][..., 0], x[..., -1]) and torch.equal(views[2][..., 0, :], x[..., -1, :])
    s = E.SHIFT_PX
    assert torch.equal(views[3][..., s:], x[..., :-s])  # moved right
    assert torch.equal(views[3][..., :s], x[..., :1].expand(-1, -1, -1, s))  # border replicated, no wrap
    assert torch.equal(views[4][..., s:, :], x[..., :-s, :])


# --- a small trained ensemble (one training shared by the tests below) ---------------------------

# 3 members (widths 4/6/8) on 800 crops x 5 epochs, the page's default crops and epochs, seed 0: about
# 12 s on one core. Float rounding differs between CPUs and moves every member: `python -m benchmark.spread
# --only ensembles` (2-core AMD EPYC, seeds 0-9, AVX-512 kernels and AVX2 kernels: ATEN_CPU_CAPABILITY=avx2
# ONEDNN_MAX_CPU_ISA=AVX2), seed 0 on the two paths / sd of one seed between them / seeds 0-9 (20 runs):
#   soft average - mean member      0.103 / 0.054, sd 0.021; 0.054-0.155, mean 0.100
#   majority vote - mean member     0.076 / 0.054, sd 0.017; 0.037-0.123
#   soft average - best member     -0.003 / 0.008, sd 0.025; -0.075 to +0.045, mean +0.009
#   error rate split - unanimous    0.224 / 0.322, sd 0.046; 0.133-0.322
# A bar sits at or under seed 0's lower value minus about 3 sd (the averaged ensemble's lead over the mean
# member: 2.6 sd above 0, and above 0 in all 20 runs).
RECIPE = E.Recipe(members=3, n_train=800, epochs=5, seed=0)


@pytest.fixture(scope="module")
def trained():
    return E.train_ensemble(RECIPE, progress=NOOP)


def test_averaged_ensemble_beats_the_mean_member(trained):
    s = E.summary(trained["probs"], trained["y"])
    assert s["soft_average"] > s["mean_member"]
    assert s["majority_vote"] > s["mean_member"]
    assert s["soft_average"] >= s["best_member"] - 0.08  # at worst not far below the best member
    assert s["ensemble_nll"] < s["mean_member_nll"]
    assert s["ensemble_confidence"] < s["mean_member_confidence"]  # averaging softens the answer
    curve = {(r["members"], r["combiner"]): r["accuracy"] for r in E.size_curve(trained["probs"], trained["y"])}
    assert curve[(RECIPE.members, "soft average")] > curve[(1, "soft average")]


def test_members_disagreeing_means_more_errors(trained):
    split = E.agreement_split(trained["probs"], trained["y"])
    assert split["unanimous"] >= 20 and split["split"] >= 20
    assert split["error_split"] >= split["error_unanimous"] + 0.08
    rows = E.disagreement_table(trained["probs"], trained["y"])
    assert rows[0]["agree"] == RECIPE.members and rows[0]["error_rate"] == min(r["error_rate"] for r in rows)


def test_stored_state_dicts_rebuild_the_members_exactly(trained):
    from core.livetrain import shapes_data

    models = E.rebuild_members(trained)
    data = shapes_data(n_train=1, n_test=RECIPE.n_test, seed=RECIPE.seed)
    for m, model in enumerate(models[:2]):
        np.testing.assert_array_equal(E.predict_probs(model, data.x_test), trained["probs"][m])
    sample = (data.x_test[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    p = E.image_probs(models, sample)
    assert p.shape == (RECIPE.members, 6) and np.allclose(p.sum(1), 1)
    # a 64-px crop as an RGB uint8 image gives the stored held-out prediction (up to the uint8 rounding)
    assert (p.argmax(1) == trained["probs"][:, 0].argmax(1)).all()


def test_same_seed_gives_identical_results():
    recipe = E.Recipe(members=2, n_train=64, epochs=1, seed=3, n_test=64)
    a = E.train_ensemble(recipe, progress=NOOP)
    b = E.train_ensemble(recipe, progress=NOOP)
    np.testing.assert_array_equal(a["probs"], b["probs"])
    np.testing.assert_array_equal(a["tta_probs"], b["tta_probs"])
    assert [m["history"] for m in a["members"]] == [m["history"] for m in b["members"]]
    assert [m["width"] for m in a["members"]] == [4, 6] and [m["seed"] for m in a["members"]] == [300, 301]


def test_progress_reports_finished_members():
    calls = []
    E.train_ensemble(E.Recipe(members=2, n_train=32, epochs=1, seed=1, n_test=16),
                     progress=lambda f, t, partial=None: calls.append((f, t, partial)))
    assert calls[-1][0] == 1.0 and [m["name"] for m in calls[-1][2]] == ["member 1", "member 2"]
    assert all(0.0 <= f <= 1.0 for f, _, _ in calls)


# --- the page ------------------------------------------------------------------------------------


def _page(**query):
    from tests.test_pages import _page as open_page

    return open_page(PAGE, **query)


def _text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in (at.success, at.warning, at.info):
        parts += [e.value for e in kind]  # noqa: PERF401
    return "\n".join(parts)


def test_page_defaults_are_the_recipe_s():
    """The page declares its defaults from core.ensembles.Recipe (nothing retyped)."""
    at = _page()
    assert not at.exception, [e.value for e in at.exception]
    r = E.Recipe()
    assert at.slider(key="ens.members").value == r.members and at.slider(key="ens.epochs").value == r.epochs
    assert at.select_slider(key="ens.n").value == r.n_train and at.number_input(key="ens.seed").value == r.seed
    assert at.radio(key="ens.widths").value == ("mixed" if r.mixed_widths else "same")


def test_page_trains_on_a_button_with_small_settings():
    from components import ensembles as ce

    ce.run_ensemble.clear()
    at = _page(members="3", n="200", epochs="1", seed="1", shape="5")
    assert not at.exception, [e.value for e in at.exception]
    assert "Train the ensemble above" in _text(at)
    assert at.button(key="ens.train").label == "Train 3 members"
    at.button(key="ens.train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {m.label: m.value for m in at.metric}
    assert {"Best single member", "Mean member", "Ensemble: soft average", "Ensemble: majority vote"} <= set(labels)
    text = _text(at)
    for name in ("member 1", "member 2", "member 3", "ensemble: soft average", "ensemble: majority vote"):
        assert f"| {name} |" in text
    assert "**Soft average:" in text and "**Majority vote:" in text
    assert "Error rate where all members agree" in labels
    assert len(at.get("vega_lite_chart")) == 4  # size curve, disagreement, TTA, the image's bars
    assert any(b.label.startswith("Download the results") for b in at.get("download_button"))
    at.run()  # a rerun (any widget touched) keeps this session's result and disables the button
    assert not at.exception and at.button(key="ens.train").disabled
    assert "Ensemble: soft average" in {m.label for m in at.metric}
    ce.run_ensemble.clear()
