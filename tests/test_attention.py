"""Attention page (Q41): SE and spatial attention by hand, hooked weights are the ones that
multiply the features, a trained CBAM net's spatial map is learned and tells the shape from the background,
plain vs attention accuracy at a fixed seed, determinism, and the page."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import attention as att


def test_se_output_is_x_times_sigmoid_of_mlp_of_avgpool():
    net = att.make_net("se", seed=1)
    se = net.attention["3"]
    x = torch.randn(2, 64, 8, 8, generator=torch.Generator().manual_seed(0))
    W1, b1 = se.mlp[0].weight, se.mlp[0].bias
    W2, b2 = se.mlp[2].weight, se.mlp[2].bias
    s = x.mean(dim=(2, 3))  # squeeze: (N, C)
    w = torch.sigmoid(torch.relu(s @ W1.T + b1) @ W2.T + b2)  # excite
    with torch.no_grad():
        assert torch.allclose(se(x), x * w[:, :, None, None], atol=1e-6)
    assert se.mlp[0].out_features == 64 // att.REDUCTION


def test_spatial_map_is_in_0_1_with_one_weight_per_position():
    net = att.make_net("cbam", seed=0)
    sp = net.attention["1"].spatial
    x = torch.randn(3, 16, 16, 16, generator=torch.Generator().manual_seed(1)) * 5
    with torch.no_grad():
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        m = torch.sigmoid(sp.conv(pooled))
        assert m.shape == (3, 1, 16, 16)
        assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
        assert torch.allclose(sp(x), x * m, atol=1e-6)


def test_same_conv_weights_in_plain_and_attention_nets():
    plain, cbam = att.make_net("plain", seed=4), att.make_net("cbam", seed=4)
    for a, b in zip(plain.blocks.parameters(), cbam.blocks.parameters()):
        assert torch.equal(a, b)
    rows = {r["kind"]: r for r in att.architecture()}
    assert rows["plain"]["attention parameters"] == 0
    assert rows["cbam"]["parameters"] == rows["plain"]["parameters"] + rows["cbam"]["attention parameters"]


def test_hooked_weights_are_the_ones_that_multiply_the_features():
    net = att.make_net("cbam", seed=2).eval()
    rgb = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    seen = att.explain(net, rgb)
    # recompute block 4's input by hand, then the CBAM gates from it
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        h = net.normalise(x)
        for i in range(3):
            h = net.blocks[i](h)
            if str(i) in net.attention:
                h = net.attention[str(i)](h)
        h = net.blocks[3](h)
        ch = net.attention["3"].channel
        w = torch.sigmoid(ch.mlp(h.mean((2, 3))) + ch.mlp(h.amax((2, 3))))[0]
        hc = h * w[None, :, None, None]
        m = torch.sigmoid(net.attention["3"].spatial.conv(torch.cat([hc.mean(1, keepdim=True),
                                                                     hc.amax(1, keepdim=True)], 1)))[0, 0]
    assert np.allclose(seen["gates"]["block4 channel"], w.numpy(), atol=1e-6)
    assert np.allclose(seen["gates"]["block4 spatial"], m.numpy(), atol=1e-6)
    assert seen["gates"]["block2 spatial"].shape == (16, 16)
    assert seen["gates"]["block2 channel"].shape == (16,)
    assert seen["probs"].sum() == pytest.approx(1.0, abs=1e-5)


# --- training: one shared plain-vs-CBAM run --------------------------------------------------

SMALL = dict(kind="cbam", n_train=800, n_test=300, epochs=5, seed=0)


@pytest.fixture(scope="module")
def run():
    return att.compare(**SMALL)


def test_both_nets_learn_and_the_gap_is_what_was_measured(run):
    """On one-shape crops and such a short budget (800 crops x 5 epochs), attention does NOT help: its
    gates start near 0.5 and slow early learning. Float rounding differs between CPUs and moves both nets:
    `python -m benchmark.spread --only attention` (2-core AMD EPYC, seeds 0-9, AVX-512 kernels and AVX2
    kernels: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2; the AVX2 path gave exactly the 76 / 72 / 66 %
    plain and 64 / 47 / 62 % CBAM first quoted for seeds 0 / 1 / 2), seed 0 on the two paths / sd of one
    seed between them / seeds 0-9:
      plain 0.737 / 0.760, sd 0.068, 0.24-0.77;  CBAM 0.713 / 0.643, sd 0.083, 0.16-0.84
      CBAM - plain -0.023 / -0.117, sd 0.118, -0.33 to +0.22
    So the test asserts only what holds within 3 sd of seed 0: both learn far above chance (1/6), and the
    attention net is neither far ahead (0.35) nor as accurate as a leaked label would make it (near 1.0)."""
    fp, fa = run["final"]["plain"], run["final"]["cbam"]
    assert fp > 0.5, fp
    assert fa > 0.35, fa
    assert fa - fp < 0.35 and fa < 0.97, (fa, fp)


def test_trained_spatial_map_is_learned_and_tells_the_shape_from_the_background(run):
    """The spatial gates start almost flat (a sigmoid of a small random conv) and training shapes them.
    On 20 one-shape crops, `python -m benchmark.spread --only attention` (2-core AMD EPYC, seeds 0-9,
    AVX-512 kernels and AVX2 kernels: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2), seed 0 on the two
    paths / sd of one seed between them:
      block-4 map, sd over the crop: trained 0.245 / 0.280, sd 0.025 (seeds 0-9: 0.046-0.37); untrained
        0.0004 (seeds 0-9: at most 0.0011)
      block-4 map, mean |on the shape - on the background|: trained 0.092 / 0.111, sd 0.014 (seeds 0-9:
        0.031-0.17); untrained at most 0.001
    The bars sit under seed 0's lower value minus 3 sd. Which way the map leans is NOT stable: the block-2
    map was higher on the shape on 20 of 20 crops at seed 0 on both paths, but on 0-3 of 20 at seeds 2,
    4 and 8, and seeds 5 and 7 went from 20 of 20 (AVX-512) to 10 and 1 (AVX2): printed, not asserted."""
    from core.shapes import make_scene
    from models.shapes_cnn import torch_threads

    nets = {"trained": att.load_net("cbam", run["state"]["cbam"]),
            "untrained": att.make_net("cbam", seed=SMALL["seed"]).eval()}
    spread, apart = {k: [] for k in nets}, {k: [] for k in nets}
    wins = 0
    with torch_threads(1):  # one image at a time: two spin-waiting threads on a busy 2-core machine: 100x slower
        for s in range(20):
            scene = make_scene(1000 + s, size=64, n_shapes=(1, 1), min_size=0.45, max_size=0.8)
            for name, net in nets.items():
                gates = att.explain(net, scene.image)["gates"]
                m = gates["block4 spatial"]
                inside, outside = att.mass_inside(m, scene.masks[0])
                spread[name].append(float(m.std()))
                apart[name].append(abs(inside - outside))
                if name == "trained":
                    inside, outside = att.mass_inside(gates["block2 spatial"], scene.masks[0])
                    wins += inside > outside
    print(f"block-2 map higher on the shape on {wins} of 20 crops")
    assert np.mean(spread["trained"]) >= 0.15 and np.mean(spread["untrained"]) < 0.01, spread
    assert np.mean(apart["trained"]) >= 0.045, apart


def test_same_seed_same_numbers():
    a = att.compare(kind="se", n_train=64, n_test=32, epochs=1, seed=5)
    b = att.compare(kind="se", n_train=64, n_test=32, epochs=1, seed=5)
    assert a["curve"] == b["curve"]
    for k in ("plain", "se"):
        assert all(np.array_equal(a["state"][k][n], b["state"][k][n]) for n in a["state"][k])


# --- the page --------------------------------------------------------------------------------

PAGE = "pages/25_Attention.py"


def test_page_trains_and_shows_channel_weights_and_spatial_map(trained_shapes_cnn):
    from components import attention as ca
    from tests.test_pages import _page

    at = _page(PAGE, n="200", epochs="1", seed="1")
    assert not at.exception, [e.value for e in at.exception]
    assert at.dataframe[0].value["parameters"][0] == att.architecture()[0]["parameters"]
    next(b for b in at.button if "Train both nets" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join(m.value for m in at.markdown)
    assert "Prediction of the trained attention net" in text
    captions = "\n".join(c.value for c in at.caption)
    assert "16 channel weights" not in captions and "64 channel weights" in captions
    assert "Mean attention on the shape's pixels" in captions  # CBAM's map on the offline crop
    at.radio(key="att.site").set_value("block2").run()
    assert "16 channel weights" in "\n".join(c.value for c in at.caption)
    at.radio(key="att.kind").set_value("se").run()  # other settings: nothing trained yet, no error
    assert not at.exception
    ca.run_compare.clear()


def test_page_controls_start_at_the_recipe_of_core(trained_shapes_cnn):
    """Each control is declared once on the page, with its default taken from core.attention."""
    from components import attention as ca
    from tests.test_pages import _page

    at = _page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    kind = at.radio(key="att.kind")
    assert (kind.label, kind.value) == ("Attention module", att.KIND)
    assert list(kind.options) == [att.KIND_TITLES[k] for k in ("se", "cbam")]
    n = at.select_slider(key="att.n")
    assert (n.label, n.value, list(n.options)) == ("Training crops", att.N_TRAIN, [str(c) for c in ca.N_TRAIN_CHOICES])
    e = at.slider(key="att.epochs")
    assert (e.label, e.value, e.min, e.max, e.step) == ("Epochs", att.EPOCHS, *ca.EPOCH_RANGE, 1)
    seed = at.number_input(key="att.seed")
    assert (seed.label, seed.value, seed.min, seed.max, seed.step) == ("Seed", 0, 0, 99, 1)
    assert seed.help == "Initialisation and shuffling; both nets share it."

