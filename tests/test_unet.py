"""Medical imaging and U-Net: synthetic cells, Dice, the skip switch, training, the page."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import unet

# --- Dice, by hand -------------------------------------------------------------------------------

A = np.array([[1, 1, 0, 0]], bool)
B = np.array([[0, 1, 1, 0]], bool)
Z = np.zeros((1, 4), bool)
ONE = np.array([[1, 0, 0, 0]], bool)


@pytest.mark.parametrize("pred,truth,expected", [
    (A, A, 1.0),              # identical
    (A, B, 0.5),              # 2*1 / (2 + 2)
    (A, ~A, 0.0),             # disjoint
    (Z, Z, 1.0),              # both empty: nothing to find, nothing found
    (Z, A, 0.0),              # missed everything
    (A, Z, 0.0),              # false alarm on an empty image
    (ONE, A, 2 / 3),          # 2*1 / (1 + 2)
    (np.ones((1, 4), bool), A, 2 * 2 / (4 + 2)),
])
def test_dice_matches_hand_cases(pred, truth, expected):
    assert unet.dice(pred, truth) == pytest.approx(expected)


def test_boundary_band_and_boundary_dice():
    truth = np.zeros((20, 20), bool)
    truth[5:15, 5:15] = True
    band = unet.boundary_band(truth, 2)
    # a 10x10 square: the ring from 3..16 outside minus the 6x6 core 7..12 that is >= 2 px inside
    expected = np.zeros_like(truth)
    expected[3:17, 3:17] = True
    expected[7:13, 7:13] = False
    assert np.array_equal(band, expected)
    assert unet.boundary_dice(truth, truth) == 1.0
    blob = np.zeros_like(truth)
    blob[6:14, 6:14] = True  # one pixel too small all round: overall Dice fine, boundary worse
    assert unet.boundary_dice(blob, truth) < unet.dice(blob, truth)
    assert unet.boundary_dice(blob, truth) == pytest.approx(
        unet.dice(blob & expected, truth & expected))


# --- the synthetic cells -------------------------------------------------------------------------

def test_image_i_depends_only_on_seed_and_i():
    imgs, masks = unet.cell_set(6, seed=3)
    img5, mask5 = unet.make_cell_image(3, 5)
    assert np.array_equal(imgs[5], img5) and np.array_equal(masks[5], mask5)
    other, _ = unet.make_cell_image(4, 5)
    assert not np.array_equal(img5, other)
    assert imgs.dtype == np.uint8 and imgs.shape == (6, unet.SIZE, unet.SIZE) and masks.dtype == bool


def test_masks_are_the_drawn_cells():
    """The mask is the union of the ellipse equations; a clean render thresholded gives it back
    exactly; in the degraded image cells are brighter than their surroundings."""
    from scipy.ndimage import label

    touching = 0
    for i in range(12):
        cells = unet.cell_params(0, i)
        clean, mask = unet.make_cell_image(0, i, clean=True)
        assert np.array_equal(mask, unet.cells_mask(cells))
        assert np.array_equal(clean > 0.1 * 255 + 1, mask)  # flat background 0.1, every cell pixel brighter
        for cx, cy, a, b, *_ in cells:  # each cell's centre (if in frame) is in the mask
            if 0 <= cx < unet.SIZE and 0 <= cy < unet.SIZE:
                assert mask[int(cy), int(cx)]
        img, mask2 = unet.make_cell_image(0, i)
        assert np.array_equal(mask, mask2)
        if mask.any() and (~mask).any():
            assert img[mask].mean() > img[~mask].mean() + 20
        touching += label(mask)[1] < len(cells)
    assert touching >= 3  # some cells touch or overlap (fewer connected blobs than cells)


# --- the network -----------------------------------------------------------------------------------

def test_no_skips_same_parameters_and_decoder_gets_no_encoder_features():
    on, off = unet.make_unet(1, skips=True), unet.make_unet(1, skips=False)
    assert unet.n_parameters(on) == unet.n_parameters(off)
    assert all(torch.equal(a, b) for a, b in zip(on.state_dict().values(), off.state_dict().values()))
    x = torch.rand(2, 1, 64, 64)

    def outputs(net):
        net.eval()
        with torch.no_grad():
            clean = net(x)
            handles = [s.register_forward_pre_hook(lambda m, inp: (inp[0] + 5 * torch.randn_like(inp[0]),))
                       for s in net.skip]
            try:
                perturbed = net(x)
            finally:
                for h in handles:
                    h.remove()
        return clean, perturbed

    clean, perturbed = outputs(off)
    assert torch.equal(clean, perturbed)  # encoder skip features perturbed: no effect at all
    clean, perturbed = outputs(on)
    assert (clean - perturbed).abs().max() > 1e-2


def test_layer_shapes_and_diagram_come_from_the_module():
    net = unet.make_unet(0, skips=False)
    rows = {r["name"]: r for r in unet.layer_shapes(net, 64)}
    assert (rows["enc1"]["channels"], rows["enc1"]["height"]) == (8, 64)
    assert (rows["bottleneck"]["channels"], rows["bottleneck"]["height"]) == (64, 8)
    assert (rows["dec1"]["channels"], rows["head"]["channels"], rows["head"]["height"]) == (8, 1, 64)
    assert sum(r["params"] for r in rows.values()) == unet.n_parameters(net)
    rows96 = {r["name"]: r for r in unet.layer_shapes(net, 96)}
    assert rows96["bottleneck"]["height"] == 12
    dot = unet.architecture_dot(net, 96)
    assert "bottleneck\\n64×12×12" in dot and dot.count("style=dashed") == 3 and "zeros" in dot
    dot_on = unet.architecture_dot(unet.make_unet(0, skips=True), 64)
    assert "style=dashed" not in dot_on and dot_on.count("skip (concat)") == 3


def test_same_seed_same_history():
    a = unet.train(n_train=16, n_test=8, epochs=1, seed=4, skips=False)
    b = unet.train(n_train=16, n_test=8, epochs=1, seed=4, skips=False)
    assert a["history"] == b["history"]
    assert all(np.array_equal(a["state"][k], b["state"][k]) for k in a["state"])


# --- training: one shared short comparison ----------------------------------------------------

SMALL = dict(n_train=120, epochs=4, seed=0)


@pytest.fixture(scope="module")
def run():
    return unet.compare(**SMALL)


def test_unet_segments_held_out_cells_and_skips_help(run):
    """Measured by hand at 120 images x 4 epochs (batch 8, lr 1e-2), held-out Dice / boundary
    Dice with skips vs without: seed 0 0.963 / 0.941 vs 0.888 / 0.827, seed 1 0.913 / 0.881 vs
    0.860 / 0.795, seed 2 0.967 / 0.945 vs 0.892 / 0.829. So with skips Dice >= 0.9 on every seed;
    the gap is 5-8 points of Dice and 9-12 points of boundary Dice."""
    on, off = run["final"]["with skips"], run["final"]["without skips"]
    assert on["dice"] >= 0.85, on
    assert on["boundary_dice"] - off["boundary_dice"] >= 0.05, (on, off)
    assert on["dice"] - off["dice"] >= 0.02, (on, off)
    assert run["params"]["with skips"] == run["params"]["without skips"]
    assert [r["epoch"] for r in run["curve"]] == [1, 2, 3, 4] * 2


def test_predict_on_a_bigger_image_of_any_size(run):
    net = unet.load_unet(run["state"]["with skips"], skips=True)
    imgs, masks = unet.cell_set(2, seed=unet.TEST_SEED0 + 9)
    big, truth = np.concatenate(list(imgs), axis=1)[:60], np.concatenate(list(masks), axis=1)[:60]  # 60 x 128
    prob = unet.predict(net, big)
    assert prob.shape == big.shape and 0 <= prob.min() and prob.max() <= 1
    assert unet.dice(prob >= 0.5, truth) >= 0.8
    rgb = np.repeat(big[..., None], 3, axis=2)
    assert np.array_equal(unet.to_gray(rgb), big)
    assert unet.prepare_gray(rgb, 90).shape == (42, 90)


# --- the page --------------------------------------------------------------------------------------

PAGE = "pages/29_Medical_imaging_U-Net.py"


def test_page_draws_the_net_then_trains_and_shows_dice():
    from components import unet as cu
    from tests.test_pages import _page

    at = _page(PAGE, n="40", epochs="2", seed="1", skips="0")
    assert not at.exception, [e.value for e in at.exception]
    assert "zeros" in at.get("graphviz_chart")[0].proto.spec
    params = unet.n_parameters(unet.make_unet(0))
    assert f"{params:,}" in at.metric[0].value
    next(b for b in at.button if "Train with and without skips" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert any("Dice" in lab and "without skips" in lab for lab in labels), labels
    run = cu.run_compare(40, 2, 1)  # cached: the page's own numbers
    shown = next(m.value for m in at.metric if m.label.startswith("Held-out Dice, with skips"))
    assert shown == f"{run['final']['with skips']['dice']:.3f}"
    captions = [i.caption for el in at.get("image") for i in el.proto.imgs]
    assert any(c.startswith("Dice ") and "boundary" in c for c in captions), captions  # held-out errors
    assert any("Probability of 'cell'" in c for c in captions), captions  # the active photo, segmented
    assert any("Be honest" in i.value for i in at.info)
    cu.run_compare.clear()


def test_page_controls_start_at_the_recipe_of_core():
    """Each control is declared once on the page, with its default taken from core.unet."""
    from components import unet as cu
    from tests.test_pages import _page

    at = _page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    n = at.select_slider(key="unet.n")
    assert (n.label, n.value) == ("Training images", unet.N_TRAIN)
    e = at.slider(key="unet.epochs")
    assert (e.label, e.value, e.min, e.max, e.step) == ("Epochs", unet.EPOCHS, *cu.EPOCH_RANGE, 1)
    skips = at.toggle(key="unet.skips")
    assert (skips.label, skips.value) == ("Skip connections", True)

