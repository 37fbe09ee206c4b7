"""core.saliency and the Interpretability page: exact values on a hand-weighted net, equality
with captum, no hook leaks on the shared model (also from 8 threads), and behavioural bars on
the trained shapes CNN (Grad-CAM finds the shape; randomising the network changes Grad-CAM;
deleting Grad-CAM's pixels first hurts more than deleting at random)."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core import saliency as S
from core.classifier import Classifier, shape_sample

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/07_Interpretability.py"
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
              "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs")


def hooks_left(model) -> list[str]:
    return [f"{name or 'model'}.{d}" for name, m in model.named_modules() for d in HOOK_DICTS
            if getattr(m, d, None)]


@pytest.fixture(scope="module")
def shapes(trained_shapes_cnn):
    from models import registry

    return Classifier.shapes(registry.for_inference(copy.deepcopy(trained_shapes_cnn)))


@pytest.fixture(scope="module")
def resnet():
    """ResNet-18's architecture (untrained: the ImageNet weights never exist in tests); its
    ReLUs are in-place and shared within each block, as in the real model."""
    from models import registry

    torch.manual_seed(0)
    return Classifier.imagenet(registry.for_inference(registry.build_architecture("resnet18")),
                               registry.categories("resnet18"))


# --- a hand-weighted net: exact Saliency, Integrated Gradients and Grad-CAM ------------------

W = np.array([[1.0, -2.0, 0.5], [0.5, 1.0, -1.0]])  # 1x1 conv: 3 colours -> 2 channels
V = np.array([[2.0, -1.0], [-0.5, 3.0]])  # head: 2 channels -> 2 classes
X = np.array([[[0.2, 0.9], [0.4, 0.1]],  # (3, 2, 2) image in [0, 1]
              [[0.5, 0.1], [0.3, 0.6]],
              [[0.1, 0.7], [0.8, 0.2]]])


@pytest.fixture(scope="module")
def tiny():
    conv, relu, fc = nn.Conv2d(3, 2, 1, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(W).view(2, 3, 1, 1))
        fc.weight.copy_(torch.tensor(V))
    model = nn.Sequential(conv, relu, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc).double().eval()
    return Classifier("tiny", "tiny", "shapes", model, ("a", "b"), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), None,
                      {"conv": conv, "relu": relu}, cam_layer="relu", first_conv="conv")


def _tiny_by_hand(target: int):
    """logit_c = sum_k V[c,k] * mean_ij relu(sum_ch W[k,ch] x[ch,i,j]); by the chain rule the
    gradient at (ch, i, j) is sum_k V[c,k] / 4 * [pre_k(i,j) > 0] * W[k,ch]."""
    pre = np.einsum("kc,cij->kij", W, X)
    active = (pre > 0).astype(float)
    grad = np.einsum("k,kij,kc->cij", V[target] / 4, active, W)
    cam = np.maximum(np.einsum("k,kij->ij", V[target] / 4, np.maximum(pre, 0)), 0)  # weights = mean gradient
    logit = float(V[target] @ np.maximum(pre, 0).mean(axis=(1, 2)))
    return pre, grad, cam, logit


@pytest.mark.parametrize("target", [0, 1])
def test_tiny_net_exact_saliency_ig_and_gradcam(tiny, target):
    pre, grad, cam, logit = _tiny_by_hand(target)
    assert (pre > 0).any() and (pre <= 0).any()  # the ReLU really switches some units off
    x = torch.tensor(X)[None]
    sal = S.raw_attribution(tiny, x, target, "Saliency")
    np.testing.assert_allclose(sal[0], np.abs(grad), rtol=0, atol=1e-12)
    # ReLU is positively homogeneous, so along the path a*x from the black baseline the
    # gradient is constant: IG = x * grad(x) exactly, summing to logit(x) - logit(0).
    # (captum's Gauss-Legendre weights are float32: agreement to 1e-7, not 1e-12.)
    ig = S.raw_attribution(tiny, x, target, "Integrated Gradients", ig_steps=5)
    np.testing.assert_allclose(ig[0], X * grad, rtol=0, atol=1e-7)
    assert ig.sum() == pytest.approx(logit, abs=1e-6)
    gc = S.raw_attribution(tiny, x, target, "Grad-CAM")
    np.testing.assert_allclose(gc[0, 0], cam, rtol=0, atol=1e-12)
    # the verb: channel reduction and max-normalisation of the same numbers
    heat = S.attribute(tiny, x, target, "Saliency")
    np.testing.assert_allclose(heat, np.abs(grad).sum(0) / np.abs(grad).sum(0).max(), atol=1e-6)


@pytest.mark.parametrize("target", [0, 1])
def test_tiny_net_occlusion_is_the_probability_drop(tiny, target):
    """Occlusion on a 2x2 image: the window is the whole image (one patch), so every pixel
    gets p(x) - p(mean colour) of the class: the softmax, not the logit (Zeiler and Fergus's
    occlusion maps; a shift of every logit alike changes nothing)."""
    x = torch.tensor(X)[None]
    out = S.raw_attribution(tiny, x, target, "Occlusion")
    mean = X.mean(axis=(1, 2), keepdims=True) * np.ones_like(X)

    def softmax(image):
        logits = V @ np.maximum(np.einsum("kc,cij->kij", W, image), 0).mean(axis=(1, 2))
        e = np.exp(logits - logits.max())
        return e / e.sum()

    expected = softmax(X)[target] - softmax(mean)[target]
    logit_drop = _tiny_by_hand(target)[3] - float(V[target] @ np.maximum(np.einsum("kc,cij->kij", W, mean), 0)
                                                  .mean(axis=(1, 2)))
    assert abs(expected - logit_drop) > 0.05  # the two would differ here
    np.testing.assert_allclose(out[0], np.full_like(X, expected), atol=1e-12)


def test_bad_arguments_are_refused(tiny):
    x = torch.tensor(X)[None]
    with pytest.raises(ValueError, match="unknown method"):
        S.attribute(tiny, x, 0, "LIME")
    with pytest.raises(ValueError, match="unknown layer"):
        S.attribute(tiny, x, 0, "Grad-CAM", "layer9")
    with pytest.raises(ValueError, match="one image"):
        S.attribute(tiny, torch.cat([x, x]), 0, "Saliency")


# --- guided backprop through ReLU6 (EfficientNet-Lite, MobileNet) ----------------------------

W6 = np.array([[9.0, -2.0, 0.5], [0.5, 1.0, -1.0]])  # channel 0 saturates (> 6) where red is bright
V6 = np.array([[2.0, -1.0], [-0.5, 3.0]])


@pytest.fixture(scope="module")
def tiny6():
    conv, relu6, fc = nn.Conv2d(3, 2, 1, bias=False), nn.ReLU6(), nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(W6).view(2, 3, 1, 1))
        fc.weight.copy_(torch.tensor(V6))
    model = nn.Sequential(conv, relu6, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc).double().eval()
    return Classifier("tiny6", "tiny6", "shapes", model, ("a", "b"), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), None,
                      {"conv": conv, "relu6": relu6}, cam_layer="relu6", first_conv="conv")


@pytest.mark.parametrize("target", [0, 1])
def test_guided_gradcam_zeroes_negative_gradients_at_relu6(tiny6, target):
    """Guided backprop keeps only the positive part of the gradient arriving at each
    activation. At a ReLU6 the gradient into unit k is V[c, k] / 4 where 0 < pre < 6 (0 where
    it is switched off or saturated), so guided backprop gives sum_k W[k, ch] [0 < pre_k < 6]
    max(V[c, k], 0) / 4, and Guided Grad-CAM multiplies that by Grad-CAM at the ReLU6,
    relu(sum_k V[c, k] / 4 * relu6(pre_k)). captum alone hooks nn.ReLU only: through an
    nn.ReLU6 the negative V[c, k] would pass and the plain gradient would come out."""
    from captum.attr import GuidedBackprop

    pre = np.einsum("kc,cij->kij", W6, X)
    live = ((pre > 0) & (pre < 6)).astype(float)
    assert (pre > 6).any() and live.any() and (pre <= 0).any()  # all three regimes of ReLU6 occur
    guided = np.einsum("k,kij,kc->cij", np.maximum(V6[target], 0) / 4, live, W6)
    plain = np.einsum("k,kij,kc->cij", V6[target] / 4, live, W6)
    assert np.abs(guided - plain).max() > 0.1  # the negative weight reaches a live unit
    cam = np.maximum(np.einsum("k,kij->ij", V6[target] / 4, np.clip(pre, 0, 6)), 0)
    x = torch.tensor(X)[None]
    ours = S.raw_attribution(tiny6, x, target, "Guided Grad-CAM")
    np.testing.assert_allclose(ours[0], guided * cam, rtol=0, atol=1e-12)
    # what captum's own GuidedBackprop does with a ReLU6 (no hook: the plain gradient)
    bare = GuidedBackprop(S.wrapped(tiny6)).attribute(x.clone().requires_grad_(True), target=target)
    np.testing.assert_allclose(bare[0].detach().numpy(), plain, rtol=0, atol=1e-12)
    assert not hooks_left(tiny6.model)


@pytest.mark.parametrize("side", [2, 7, 8, 64, 160, 224, 300])
def test_occlusion_patches_tile_the_image(side):
    """Every pixel is covered (captum drops a last patch that does not fit), at most 8 x 8 passes."""
    window, stride = S.occlusion_window(side)
    positions = (side - window) // stride + 1
    assert (side - window) % stride == 0 and window >= stride and positions <= 8


# --- ResNet-18 (in-place ReLUs): equality with captum, no hooks left --------------------------


def test_resnet_gradcam_equals_captum_on_the_bare_model(resnet):
    from captum.attr import LayerAttribution, LayerGradCam

    rgb = np.random.default_rng(1).integers(0, 256, (180, 260, 3), dtype=np.uint8)
    unit = resnet.unit(rgb)
    ours = S.attribute(resnet, unit, 7, "Grad-CAM", "layer3")
    cam = LayerGradCam(resnet.model, resnet.model.layer3).attribute(resnet.tensor(rgb), target=7,
                                                                    relu_attributions=True)
    ref = LayerAttribution.interpolate(cam, (224, 224), interpolate_mode="bilinear")[0, 0].detach().numpy()
    np.testing.assert_allclose(ours, ref / ref.max(), atol=1e-5)
    assert ours.shape == (224, 224) and not hooks_left(resnet.model)


def test_guided_gradcam_handles_resnets_inplace_relus(resnet):
    """Captum hooks every nn.ReLU for guided backprop; ResNet's are in-place and reused twice
    per block. The result must equal the same network with out-of-place ReLUs."""
    rgb = np.random.default_rng(2).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    unit = resnet.unit(rgb)
    assert any(isinstance(m, nn.ReLU) and m.inplace for m in resnet.model.modules())
    ours = S.raw_attribution(resnet, unit, 3, "Guided Grad-CAM")
    twin, memo = S.random_twin(resnet)  # a copy, not randomised: switch its ReLUs out of place
    for m in twin.model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    ref = S.raw_attribution(twin, unit, 3, "Guided Grad-CAM")
    assert np.abs(ours).max() > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7 * np.abs(ref).max())
    assert not hooks_left(resnet.model)


def test_every_method_on_resnet_gives_a_normalised_map_and_leaves_no_hooks(resnet):
    rgb = np.random.default_rng(3).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    unit = resnet.unit(rgb)
    before = {k: v.clone() for k, v in resnet.model.state_dict().items()}
    for method in S.METHODS:
        heat = S.attribute(resnet, unit, 11, method, ig_steps=4) if method == "Integrated Gradients" \
            else S.attribute(resnet, unit, 11, method)
        assert heat.shape == (224, 224) and heat.dtype == np.float32, method
        assert heat.min() >= 0 and heat.max() == pytest.approx(1.0), method
    with pytest.raises(Exception):
        S.attribute(resnet, unit, 5000, "Guided Grad-CAM")  # no class 5000: fails inside captum
    assert not hooks_left(resnet.model)  # ... and its hooks are gone even then
    assert not resnet.model.training
    assert all(torch.equal(before[k], v) for k, v in resnet.model.state_dict().items())


# --- the shared model from 8 threads -------------------------------------------------------


def test_concurrent_attributions_equal_serial_and_leave_no_hooks(shapes):
    methods = ("Grad-CAM", "Guided Grad-CAM", "Saliency", "Integrated Gradients")
    jobs = [(shape_sample(300 + i), i % 6, methods[i % len(methods)], ("block3", "block4")[i % 2])
            for i in range(8)]

    def run(job):
        sample, target, method, layer = job
        return S.attribute(shapes, shapes.unit(sample.image), target, method, layer)

    serial = [run(job) for job in jobs]
    start = threading.Barrier(8)

    def together(job):
        start.wait()
        return [run(job) for _ in range(3)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(together, jobs))
    for job, want, got in zip(jobs, serial, results):
        for heat in got:
            assert np.array_equal(heat, want), job[2:]
    assert len({m.tobytes() for m in serial}) == 8  # the jobs really differ
    assert not hooks_left(shapes.model)


# --- behaviour on the trained shapes CNN --------------------------------------------------------

# Of 40 held-out canvases, with the shipped shapes CNN (the same file on every machine): 36
# measured, identical with AVX-512 and ATEN_CPU_CAPABILITY=avx2 kernels; the bar allows two
# canvases to flip on another CPU's rounding. The true box covers ~7 % of the canvas on average.
PEAK_IN_BOX_BAR = 0.85


def test_gradcam_peak_falls_inside_the_true_box(shapes):
    """The page's measure (the peak after a 3-px blur, S.peak_in_box) on 40 held-out canvases
    (0.90 measured; most misses are 1-3 px outside the box's edge)."""
    hits, shares = [], []
    for seed in range(2000, 2040):
        s = shape_sample(seed)
        heat = S.attribute(shapes, shapes.unit(s.image), s.label, "Grad-CAM")
        x1, y1, x2, y2 = s.box
        hits.append(S.peak_in_box(heat, s.box, s.image.shape[:2]))
        shares.append((x2 - x1) * (y2 - y1) / heat.size)
    assert np.mean(shares) < 0.12  # a map that peaked at random would land inside ~7 % of the time
    assert np.mean(hits) >= PEAK_IN_BOX_BAR, np.mean(hits)
    assert not hooks_left(shapes.model)


def test_randomising_the_network_changes_gradcam_but_hardly_saliency(shapes):
    """Adebayo et al.'s check, fully cascaded: Grad-CAM's rank correlation with the trained
    map collapses (median below 0.3, every one below 0.5), Saliency's stays high (median
    above 0.5: its map is mostly the image's edges, which a random network also shows).
    The shared model is untouched."""
    before = {k: v.clone() for k, v in shapes.model.state_dict().items()}
    grad_cam, saliency = [], []
    for seed in range(2000, 2008):
        s = shape_sample(seed)
        stages = S.randomisation_check(shapes, shapes.unit(s.image), s.label)
        assert [st.name for st in stages] == ["trained", "output head", "block4", "block3", "block2", "block1"]
        trained = S.attribute(shapes, shapes.unit(s.image), s.label, "Grad-CAM")
        np.testing.assert_array_equal(stages[0].maps["Grad-CAM"], trained)  # stage 0 = the real model
        grad_cam.append(stages[-1].spearman["Grad-CAM"])
        saliency.append(stages[-1].spearman["Saliency"])
    assert np.median(grad_cam) < 0.3 and max(grad_cam) < 0.5, grad_cam
    assert np.median(saliency) > 0.5, saliency
    assert all(torch.equal(before[k], v) for k, v in shapes.model.state_dict().items())
    assert not hooks_left(shapes.model)


def test_deleting_gradcams_pixels_first_hurts_more_than_random(shapes):
    """Deletion AUC (blur fill, 5 % steps) of Grad-CAM vs random order (3 orders averaged),
    on 20 held-out canvases. With the shipped shapes CNN: lower on 15 of 20, mean ratio 0.50,
    identical with AVX-512 and AVX2 kernels; the bars allow two canvases of rounding."""
    ours, random = [], []
    for seed in range(2000, 2020):
        s = shape_sample(seed)
        unit = shapes.unit(s.image)
        heat = S.attribute(shapes, unit, s.label, "Grad-CAM")
        ours.append(S.deletion_curve(shapes, unit, s.label, S.deletion_order(heat)).auc)
        random.append(S.random_deletion(shapes, unit, s.label).auc)
    ours, random = np.array(ours), np.array(random)
    assert (ours < random).sum() >= 13, (ours, random)
    assert ours.mean() < 0.6 * random.mean(), (ours.mean(), random.mean())


def test_deletion_curve_bookkeeping(shapes):
    s = shape_sample(7)
    unit = shapes.unit(s.image)
    order = S.deletion_order(np.zeros((160, 160), np.float32), seed=1)
    assert sorted(order.tolist()) == list(range(160 * 160))  # every pixel once
    curve = S.deletion_curve(shapes, unit, s.label, order, step=0.1, fill="mean")
    assert len(curve.fractions) == 11 and curve.fractions[0] == 0 and curve.fractions[-1] == 1
    assert curve.probs[0] == pytest.approx(float(shapes.probs(s.image)[s.label]), abs=1e-5)
    flat = S.fill_image(unit, "mean")
    assert curve.probs[-1] == pytest.approx(float(shapes.probs_from_unit(flat)[0, s.label]), abs=1e-5)
    assert S.Curve(np.array([0.0, 1.0]), np.array([1.0, 0.0])).auc == pytest.approx(0.5)


def test_peak_after_blur_and_mass_in_a_box():
    """One bright stray pixel at (5, 5) against a dense blob at (30..39, 20..29): the raw
    maximum is the stray pixel, the blurred one the blob. Boxes are in image pixels of an
    image twice the map's size, edges included."""
    heat = np.zeros((40, 50), np.float32)
    heat[20:30, 30:40] = 0.6
    heat[5, 5] = 1.0
    assert S.peak(heat) == (5, 5)
    x, y = S.peak(heat, S.PEAK_SIGMA)
    assert 30 <= x < 40 and 20 <= y < 30
    blob = (60, 40, 79, 59)  # the blob's map pixels 30..39, 20..29 have centres 61..79, 41..59
    assert S.box_mask(heat.shape, blob, (80, 100)).sum() == 100
    assert S.peak_in_box(heat, blob, (80, 100)) and not S.peak_in_box(heat, blob, (80, 100), sigma=0)
    assert S.mass_in_box(heat, blob, (80, 100)) == pytest.approx(60 / 61)
    assert S.box_mask(heat.shape, (0, 0, 99, 79), (80, 100)).all()
    assert np.isnan(S.mass_in_box(np.zeros((4, 4), np.float32), (0, 0, 1, 1), (4, 4)))


def test_overlay_keeps_the_photo_where_there_is_no_heat():
    rgb = np.full((40, 60, 3), 100, np.uint8)
    heat = np.zeros((10, 10), np.float32)
    heat[:5] = 1.0
    out = S.overlay(rgb, heat, 0.5)
    assert out.shape == rgb.shape and np.array_equal(out[-1], rgb[-1])  # no heat: untouched
    assert not np.array_equal(out[0], rgb[0])
    assert np.array_equal(S.overlay(rgb, heat, 0.0), rgb)


# --- the page: the shapes CNN on a synthetic canvas (the sidebar's known-box choice) -------------


def test_page_shapes_choice_maps_opacity_and_trust_checks(trained_shapes_cnn, monkeypatch):
    from streamlit.testing.v1 import AppTest

    calls = []
    real = S.attribute
    monkeypatch.setattr(S, "attribute", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=600)
    at.query_params.update({"clf": "shapes-cnn", "shape": "11"})
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("Offline demonstration" in i.value for i in at.info)  # chosen, not a fallback
    assert at.slider[0].label == "Heat-map opacity"  # the benchmark moves the first slider
    captions = [c.value for c in at.caption]
    assert "Shapes CNN" in captions[0] and "synthetic" in captions[0], captions[0]
    assert sum("the true box" in c for c in captions) == len(S.METHODS)
    grad_cam = next(c for c in captions if c.startswith("**Grad-CAM** · computed in"))
    assert "peak inside" in grad_cam and "of the map in it" in grad_cam, grad_cam  # on the shape
    mass = int(grad_cam.split(" of the map in it")[0].rsplit("· ", 1)[1].rstrip("%")) / 100
    box = shape_sample(11).box
    share = S.box_mask((160, 160), box, (160, 160)).mean()
    assert mass > share, (mass, share)  # more than an even spread would put there (measured 21 % vs 12 %)
    n = len(calls)
    at.slider(key="xai.opacity").set_value(0.25).run()
    assert not at.exception and len(calls) == n  # re-blend only: no attribution recomputed
    opacity = at.query_params["opacity"]
    assert (opacity[-1] if isinstance(opacity, list) else opacity) == "0.25"
    at.toggle(key="xai.checks").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [m.label for m in at.metric]
    assert [f"{m} AUC" for m in S.METHODS] == labels
    tables = [m.value for m in at.markdown if "| randomised down to |" in m.value]
    assert tables and "block1" in tables[0]


@pytest.fixture
def fresh_caches():
    """Clears the cached classifiers and maps before and after a test that puts a stand-in
    model under a real model's name (a later test must not get it)."""
    from components import classifier as cc
    from components import saliency as cs

    caches = (cc.classifier, cs.probabilities, cs.heat_map, cs.randomisation, cs.deletion, cs.display_image)
    for cache in caches:
        cache.clear()
    yield
    for cache in caches:
        cache.clear()


def test_page_resnet18_choice_on_the_photo(trained_shapes_cnn, tmp_path, monkeypatch, fresh_caches):
    """The ResNet-18 choice (offered where its weights are on the server), on the Astronaut
    photo. The ImageNet weights never exist in tests, so the weights file is a seeded untrained
    ResNet-18 saved under the real file name: it exercises the page, not the model's accuracy."""
    import time

    from streamlit.testing.v1 import AppTest

    from models import registry

    torch.manual_seed(0)
    torch.save(registry.build_architecture("resnet18").state_dict(), tmp_path / registry.get_spec("resnet18").file)
    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))
    calls = []
    real = S.attribute
    monkeypatch.setattr(S, "attribute", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=600)
    at.query_params.update({"clf": "resnet18"})
    at.switch_page(PAGE)
    start = time.perf_counter()
    at.run()
    cold = time.perf_counter() - start
    assert not at.exception, [e.value for e in at.exception]
    assert not any("Offline demonstration" in i.value for i in at.info)
    captions = [c.value for c in at.caption]
    assert "ResNet\\-18" in captions[0], captions[0]  # the model caption under the header
    explained = next(c for c in captions if "explaining" in c)
    assert "ResNet\\-18" in explained and "224×224" in explained, explained
    assert sum("computed in" in c for c in captions) == len(S.METHODS)
    assert sorted(calls) == sorted(S.METHODS)
    layer = at.selectbox(key="xai.layer")
    assert layer.value == "layer4" and layer.options == ["conv1", "layer1", "layer2", "layer3", "layer4"]
    start = time.perf_counter()
    at.slider(key="xai.opacity").set_value(0.9).run()
    warm = time.perf_counter() - start
    assert not at.exception and len(calls) == len(S.METHODS)  # nothing recomputed
    at.selectbox(key="xai.layer").set_value("layer3").run()
    assert not at.exception
    assert sorted(calls[len(S.METHODS):]) == ["Grad-CAM", "Guided Grad-CAM"]  # only the layer's methods
    print(f"ImageNet path: cold {cold:.1f} s, warm opacity rerun {warm:.2f} s")
