"""Feature extraction (core.features and its page): receptive fields, captured activations,
first-layer filters and where deep maps peak, checked against hand derivations (ResNet-18,
EfficientNet-Lite0, the shapes CNN), a manual forward pass, input gradients, the synthetic
shapes' true boxes and Chelsea's face pasted into a larger canvas (the real EfficientNet-Lite0,
never skipped)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core import features as fx
from core.classifier import Classifier, shape_sample

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/06_Feature_extraction.py"

# Hand derivation for torchvision ResNet-18 (r: field, j: stride so far; a conv k, s adds
# (k - 1) * j to r and multiplies j by s):
#   conv1 7x7/2: r = 7, j = 2; maxpool 3x3/2: r = 7 + 2*2 = 11, j = 4
#   layer1 4 convs 3x3/1: r = 11 + 4*2*4 = 43
#   layer2 3x3/2 then 3 x 3x3/1: r = 43 + 2*4 = 51, j = 8; 51 + 3*2*8 = 99
#   layer3: 99 + 2*8 = 115, j = 16; 115 + 3*2*16 = 211
#   layer4: 211 + 2*16 = 243, j = 32; 243 + 3*2*32 = 435
RESNET18 = {"conv1": (7, 2), "layer1": (43, 4), "layer2": (99, 8), "layer3": (211, 16), "layer4": (435, 32)}
# ShapesNet: conv 3x3 then (block1..3) maxpool 2x2/2:
#   conv1: 3, j 1; block1: 3 + 1 = 4, j 2; block2: 4 + 2*2 + 1*2 = 10, j 4;
#   block3: 10 + 2*4 + 1*4 = 22, j 8; block4 (no pool): 22 + 2*8 = 38, j 8
SHAPES = {"conv1": (3, 1), "block1": (4, 2), "block2": (10, 4), "block3": (22, 8), "block4": (38, 8)}
# EfficientNet-Lite0 (timm's tf_efficientnet_lite0; depthwise kernels per stage 3, 3, 5, 3, 5, 5, 3;
# blocks per stage 1, 2, 2, 3, 3, 4, 1; the first block of stages 2, 3, 4 and 6 has stride 2):
#   conv_stem 3x3/2: r = 3, j = 2;  stage1 one 3x3/1: 3 + 2*2 = 7
#   stage2 3x3/2 + 3x3/1: 7 + 2*2 = 11, j 4; 11 + 2*4 = 19
#   stage3 5x5/2 + 5x5/1: 19 + 4*4 = 35, j 8; 35 + 4*8 = 67
#   stage4 3x3/2 + 2 x 3x3/1: 67 + 2*8 = 83, j 16; 83 + 2*2*16 = 147
#   stage5 3 x 5x5/1: 147 + 3*4*16 = 339
#   stage6 5x5/2 + 3 x 5x5/1: 339 + 4*16 = 403, j 32; 403 + 3*4*32 = 787
#   stage7 3x3/1: 787 + 2*32 = 851;  head (1x1 conv, BatchNorm, ReLU6): 851
# TensorFlow's "same" padding (F.pad before each stride-2 convolution) pads (k - 2) // 2
# pixels on the left/top of an even input and the rest on the right/bottom, so unit 0's
# centre moves by (k - 1) / 2 * j - left * j at each stride-2 step:
#   stem 0 + 1 = 1; stage2 1 + 1*2 = 3; stage3 3 + 2*4 - 1*4 = 7; stage4 7 + 1*8 = 15;
#   stage6 15 + 2*16 - 1*16 = 31.
EFFICIENTNET = {"conv_stem": (3, 2, 1), "stage1": (7, 2, 1), "stage2": (19, 4, 3), "stage3": (67, 8, 7),
                "stage4": (147, 16, 15), "stage5": (339, 16, 15), "stage6": (787, 32, 31),
                "stage7": (851, 32, 31), "head": (851, 32, 31)}


@pytest.fixture(scope="module")
def resnet():
    from models import registry

    torch.manual_seed(0)
    return Classifier.imagenet(registry.build_architecture("resnet18"), registry.categories("resnet18"))


@pytest.fixture(scope="module")
def shapes(trained_shapes_cnn):
    return Classifier.shapes(trained_shapes_cnn)


# --- receptive fields -----------------------------------------------------------------


def test_resnet18_receptive_fields_are_the_hand_derived_ones(resnet):
    rfs = fx.receptive_fields(resnet.model, resnet.layers)
    assert {n: (rf.size[0], rf.stride[0]) for n, rf in rfs.items()} == RESNET18
    assert all(rf.size[0] == rf.size[1] and rf.start == (0.0, 0.0) for rf in rfs.values())


def test_shapes_cnn_receptive_fields_are_the_hand_derived_ones():
    from models.shapes_cnn import ShapesNet

    clf = Classifier.shapes(ShapesNet())
    rfs = fx.receptive_fields(clf.model, clf.layers)
    assert {n: (rf.size[0], rf.stride[0]) for n, rf in rfs.items()} == SHAPES
    # a 2x2/2 pool centres unit 0 between input pixels 0 and 1
    assert rfs["block1"].start == (0.5, 0.5) and rfs["block4"].start == (3.5, 3.5)


def test_efficientnet_lite0_receptive_fields_are_the_hand_derived_ones(efficientnet):
    """Depthwise 5x5 kernels and TensorFlow's uneven "same" padding (F.pad) followed from the
    real network; the fields do not depend on the (even) input size."""
    rfs = fx.receptive_fields(efficientnet.model, efficientnet.layers)
    assert {n: (rf.size[0], rf.stride[0], rf.start[0]) for n, rf in rfs.items()} == EFFICIENTNET
    assert all(rf.size[0] == rf.size[1] and rf.start[0] == rf.start[1] for rf in rfs.values())
    assert fx.receptive_fields(efficientnet.model, efficientnet.layers, input_size=480) == rfs
    assert not any(layer._forward_hooks for layer in efficientnet.layers.values())


def test_dilation_padding_and_a_wide_branch_are_followed():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=2, dilation=2)  # field 5
            self.b = nn.Conv2d(4, 4, 3, stride=2, padding=1)  # 5 + 2 = 7, j 2
            self.wide = nn.Conv2d(4, 4, 7, stride=2, padding=3)  # branch: 5 + 6 = 11, j 2
            self.c = nn.Conv2d(4, 4, (1, 3), padding=(0, 1))  # only widens x: 11 + 2*2 = 15

        def forward(self, x):
            y = self.a(x)
            return self.c(torch.relu(self.b(y) + self.wide(y)))

    net = Net()
    rfs = fx.receptive_fields(net, {"a": net.a, "b": net.b, "wide": net.wide, "c": net.c})
    assert rfs["a"].size == (5, 5) and rfs["b"].size == (7, 7) and rfs["wide"].size == (11, 11)
    assert rfs["c"].size == (11, 15) and rfs["c"].stride == (2, 2)
    _check_gradient_support(net, {"c": net.c}, rfs, size=41, exact=False)


def test_reflect_padding_gives_the_same_field_as_zero_padding():
    """A reflect-padded convolution pads with F.pad, then convolves without padding."""
    def net(mode):
        return nn.Sequential(nn.Conv2d(3, 4, 5, stride=2, padding=2, padding_mode=mode), nn.ReLU(),
                             nn.Conv2d(4, 4, 3, padding=1, padding_mode=mode))

    zero, reflect = net("zeros"), net("reflect")
    a = fx.receptive_fields(zero, {"out": zero[2]})
    b = fx.receptive_fields(reflect, {"out": reflect[2]})
    assert a == b and a["out"].size == (9, 9) and a["out"].start == (0.0, 0.0)


def _linearised(model: nn.Module) -> nn.Module:
    """A copy whose every path is positive and linear: ReLU, ReLU6 -> identity, max pool ->
    average pool (same window), convolutions -> constant positive weights. The gradient of
    one output unit w.r.t. the input is then > 0 exactly on its receptive field."""
    m = copy.deepcopy(model).eval()
    for name, mod in list(m.named_modules()):
        for child_name, child in list(mod.named_children()):
            if isinstance(child, (nn.ReLU, nn.ReLU6)):
                setattr(mod, child_name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                setattr(mod, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                      count_include_pad=True))
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                mod.weight.fill_(1.0 / mod.weight[0].numel())
                if mod.bias is not None:
                    mod.bias.zero_()
            elif isinstance(mod, nn.BatchNorm2d):
                mod.weight.fill_(1.0), mod.bias.zero_(), mod.running_mean.zero_(), mod.running_var.fill_(1.0)
    return m


def _check_gradient_support(model, layers, rfs, *, size, exact: bool, unit=None):
    """One forward pass with every layer hooked; for each layer, the input pixels on which
    one unit (summed over channels) depends must lie inside its computed field (``exact``:
    fill it exactly). ``unit`` None = the central unit."""
    from core.hooks import capture

    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    with capture(model, layers, detach=False) as seen:
        model(x)
    for name in layers:
        out = seen.activations[name]
        i, k = unit if unit is not None else (out.shape[2] // 2, out.shape[3] // 2)
        (grad,) = torch.autograd.grad(out[0, :, i, k].sum(), x, retain_graph=True)
        support = grad[0].abs().sum(0).numpy() > 0
        x1, y1, x2, y2 = (int(round(v)) for v in rfs[name].box(i, k, clip=(size, size)))
        ys, xs = np.nonzero(support)
        assert len(ys), name
        # non-zero only inside the computed field
        assert xs.min() >= x1 and xs.max() <= x2 and ys.min() >= y1 and ys.max() <= y2, (name, (x1, y1, x2, y2))
        if exact:  # ... and everywhere inside it: the field is not over-estimated either
            inside = np.zeros_like(support)
            inside[y1:y2 + 1, x1:x2 + 1] = True
            assert np.array_equal(support, inside), name


def test_resnet18_field_is_exactly_where_the_input_gradient_lives(resnet):
    """Linearised ResNet-18 on a 480-px input: one central unit's input gradient is non-zero
    on exactly the computed field (layer4: 435 x 435 px), all five layers."""
    rfs = fx.receptive_fields(resnet.model, resnet.layers)
    lin = _linearised(resnet.model)
    layers = dict(zip(resnet.layers, (lin.conv1, lin.layer1, lin.layer2, lin.layer3, lin.layer4)))
    _check_gradient_support(lin, layers, rfs, size=480, exact=True)
    assert rfs["layer4"].box(7, 7, clip=(480, 480)) == (224 - 217, 224 - 217, 224 + 217, 224 + 217)


def test_untrained_resnet18_gradient_stays_inside_the_field(resnet):
    """The real (untrained, ReLU and max pool) architecture: a unit near the corner, whose
    field is cut by the border, and a central one; the gradient never leaves the field."""
    rfs = fx.receptive_fields(resnet.model, resnet.layers)
    _check_gradient_support(resnet.model, resnet.layers, rfs, size=224, exact=False)
    _check_gradient_support(resnet.model, resnet.layers, rfs, size=224, exact=False, unit=(1, 2))
    assert not any(layer._forward_hooks for layer in resnet.layers.values())


def test_efficientnet_lite0_field_is_exactly_where_the_input_gradient_lives(efficientnet):
    """Linearised EfficientNet-Lite0 on a 480-px input: the input gradient of one unit is
    non-zero on exactly its computed field, for a central unit and for unit (0, 1), whose
    field is cut by the border on the side where TensorFlow's padding adds nothing (a wrong
    start, i.e. padding assumed symmetric, would be off by one pixel there)."""
    rfs = fx.receptive_fields(efficientnet.model, efficientnet.layers, input_size=480)
    lin = _linearised(efficientnet.model)
    layers = {"conv_stem": lin.conv_stem, **{f"stage{i + 1}": b for i, b in enumerate(lin.blocks)}, "head": lin.bn2}
    assert list(layers) == list(efficientnet.layers)
    _check_gradient_support(lin, layers, rfs, size=480, exact=True)
    _check_gradient_support(lin, layers, rfs, size=480, exact=True, unit=(0, 1))


def test_efficientnet_lite0_gradient_stays_inside_the_field(efficientnet):
    """The real trained network (ReLU6, BatchNorm) at the page's 224 px: a central unit and
    one near the corner; the gradient never leaves the field the page draws."""
    rfs = fx.receptive_fields(efficientnet.model, efficientnet.layers)
    _check_gradient_support(efficientnet.model, efficientnet.layers, rfs, size=224, exact=False)
    _check_gradient_support(efficientnet.model, efficientnet.layers, rfs, size=224, exact=False, unit=(1, 2))
    assert not any(layer._forward_hooks for layer in efficientnet.layers.values())


def test_shapes_cnn_field_is_exactly_where_the_input_gradient_lives():
    from models.shapes_cnn import ShapesNet

    net = ShapesNet()
    rfs = fx.receptive_fields(net, Classifier.shapes(net).layers)
    lin = _linearised(net)
    layers = {"conv1": lin.features[0][0], **{f"block{i + 1}": b for i, b in enumerate(lin.features)}}
    _check_gradient_support(lin, layers, rfs, size=64, exact=True)
    _check_gradient_support(lin, layers, rfs, size=64, exact=True, unit=(0, 1))  # field cut by the border


def test_unknown_layers_are_refused_not_guessed():
    """An upsampling step changes the map size with no rule to follow: an error, not a guess."""
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.Upsample(scale_factor=2)
            self.conv = nn.Conv2d(3, 3, 3)

        def forward(self, x):
            return self.conv(self.up(x))

    net = Odd()
    with pytest.raises(ValueError, match="interpolate"):
        fx.receptive_fields(net, {"conv": net.conv})
    with pytest.raises(ValueError, match="not a module"):
        fx.receptive_fields(net, {"x": nn.Conv2d(3, 3, 3)})


# --- captured activations ----------------------------------------------------------------


def _photo(seed=0, shape=(180, 260, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _assert_maps_equal(lm: fx.LayerMaps, manual: torch.Tensor):
    ref = manual[0].float().numpy()
    assert lm.maps.dtype == np.float16 and lm.maps.shape == ref.shape
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(lm.maps.astype(np.float32), ref, rtol=1e-3, atol=1e-3 * scale)
    np.testing.assert_allclose(lm.means, ref.mean(axis=(1, 2), dtype=np.float64), rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(lm.maxima, ref.max(axis=(1, 2)), rtol=1e-6, atol=0)


def test_resnet18_activations_equal_a_manual_forward(resnet):
    rgb = _photo()
    acts = fx.capture_layers(resnet, rgb)
    m = resnet.model
    with torch.inference_mode():
        x = resnet.tensor(rgb)
        y = m.conv1(x)
        _assert_maps_equal(acts.layers["conv1"], y)
        y = m.maxpool(m.relu(m.bn1(y)))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            y = getattr(m, name)(y)
            _assert_maps_equal(acts.layers[name], y)
        probs = torch.softmax(m(x), 1)[0].numpy()
    np.testing.assert_allclose(acts.probs, probs, rtol=1e-5, atol=1e-7)
    assert acts.input_size == (224, 224)
    assert [acts.layers[n].channels for n in acts.layers] == [64, 64, 128, 256, 512]
    assert [acts.layers[n].size for n in acts.layers] == [(112, 112), (56, 56), (28, 28), (14, 14), (7, 7)]
    assert not any(layer._forward_hooks for layer in resnet.layers.values())  # hooks removed


def test_shapes_activations_equal_a_manual_forward(shapes):
    sample = shape_sample(11)
    acts = fx.capture_layers(shapes, sample.image)
    f = shapes.model.features
    with torch.inference_mode():
        x = shapes.tensor(sample.image)
        _assert_maps_equal(acts.layers["conv1"], f[0][0](x))
        for n in range(4):
            _assert_maps_equal(acts.layers[f"block{n + 1}"], f[:n + 1](x))
    assert [acts.layers[n].channels for n in acts.layers] == [8, 8, 16, 32, 64]
    assert acts.layers["block4"].size == (20, 20)


def test_top_channels_and_peaks():
    maps = np.zeros((4, 5, 6), np.float16)
    maps[0] += 1  # mean 1, peak 1
    maps[1, 2, 3] = 9  # mean 0.3, peak 9
    maps[2] += 0.5
    maps[2, 4, 5] = 2
    lm = fx.LayerMaps(maps, maps.astype(np.float32).mean((1, 2)), maps.astype(np.float32).max((1, 2)))
    assert list(lm.top(3)) == [0, 2, 1] and list(lm.top(2, by="peak")) == [1, 2]
    assert lm.peak(1) == (2, 3) and lm.peak(2) == (4, 5)
    rf = fx.ReceptiveField((5, 5), (4, 4), (1.5, 1.5))
    assert rf.centre(2, 3) == (9.5, 13.5)
    assert fx.peak_inside(lm, rf, 1, (13, 9, 14, 10)) and not fx.peak_inside(lm, rf, 1, (0, 0, 13, 9))


# --- where deep maps peak on the synthetic shapes -------------------------------------------

SEEDS = range(100, 160)  # 60 held-out one-shape images


@pytest.fixture(scope="module")
def peak_stats(shapes):
    rfs = fx.receptive_fields(shapes.model, shapes.layers)
    stats = {"chance": [], "all": {n: [] for n in shapes.layers}, "peak8": [], "mean8": []}
    for seed in SEEDS:
        s = shape_sample(seed)
        acts = fx.capture_layers(shapes, s.image)
        x1, y1, x2, y2 = s.box
        stats["chance"].append((x2 - x1 + 1) * (y2 - y1 + 1) / s.image.shape[0] / s.image.shape[1])
        for name, lm in acts.layers.items():
            stats["all"][name].append(fx.peaks_inside(lm, rfs[name], range(lm.channels), s.box) / lm.channels)
        deep = acts.layers["block4"]
        stats["peak8"].append(fx.peaks_inside(deep, rfs["block4"], deep.top(8, by="peak"), s.box) / 8)
        stats["mean8"].append(fx.peaks_inside(deep, rfs["block4"], deep.top(8, by="mean"), s.box) / 8)
    return {k: (float(np.mean(v)) if isinstance(v, list) else {n: float(np.mean(x)) for n, x in v.items()})
            for k, v in stats.items()}


def test_deep_maps_peak_inside_the_shape_more_often_than_not(peak_stats):
    """Bar: over 60 held-out images, the strongest unit of a block3 / block4 channel lies in
    the true box for >= 55 % of the channels (measured 71 % / 61 %), while the box covers
    only ~8 % of the image; the 8 block4 channels with the highest peak do so >= 80 % of the
    time (measured 92 %)."""
    assert peak_stats["chance"] < 0.1
    assert peak_stats["all"]["block3"] >= 0.55, peak_stats
    assert peak_stats["all"]["block4"] >= 0.55, peak_stats
    assert peak_stats["peak8"] >= 0.8, peak_stats


def test_block4_channels_ranked_by_mean_are_background_channels(peak_stats):
    """What the page's "What to notice" says: at block4 the channels with the highest mean
    are broad background responses; ranking by peak finds the shape."""
    assert peak_stats["mean8"] < 0.3 < peak_stats["peak8"], peak_stats


# --- where deep maps peak on a real photo: Chelsea's face pasted into a larger canvas --------

PLACES = ("centre", "top left", "top right", "bottom left", "bottom right")
BACKGROUNDS = ("grey", "blurred noise")


def pasted_face(place: str, background: str) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Chelsea's face (x 50..399, y 0..299 of the 451 x 300 sample) pasted at ``place`` into a
    canvas with three times its area (sides x sqrt 3, so the face is 1/3 of the image), on flat
    grey or on blurred colour noise (seeded). Returns the canvas and the face's box in the
    network's 224 x 224 input (x1, y1, x2, y2: edges, not pixel indices)."""
    import cv2

    from core.images import load_sample

    face = load_sample("chelsea").work[0:300, 50:400]
    fh, fw = face.shape[:2]
    h, w = int(round(fh * 3 ** 0.5)), int(round(fw * 3 ** 0.5))
    if background == "grey":
        img = np.full((h, w, 3), 128, np.uint8)
    else:
        noise = np.random.default_rng(0).normal(128, 60, (h, w, 3)).astype(np.float32)
        img = np.clip(cv2.GaussianBlur(noise, (0, 0), 4) * 3 - 256, 0, 255).astype(np.uint8)
    y = {"centre": (h - fh) // 2, "top": 0, "bottom": h - fh}[place.split()[0]]
    x = {"centre": (w - fw) // 2, "left": 0, "right": w - fw}[place.split()[-1]]
    img[y:y + fh, x:x + fw] = face
    return img, (x * 224 / w, y * 224 / h, (x + fw) * 224 / w, (y + fh) * 224 / h)


def test_deep_maps_on_a_photo_peak_on_the_object(efficientnet):
    """What the page shows on a photo, on 10 canvases (5 places x 2 backgrounds) where the
    cat's face covers 1/3 of the image: the strongest unit of the deep layers' most active
    channels lies on the face far more often than the 1/3 a random place would give. Measured
    (mean / lowest canvas) for the 16 channels with the highest peak: stage6 0.99 / 0.88,
    stage7 0.99 / 0.88, head 0.94 / 0.75; head's 16 channels with the highest *mean* (the
    page's default ranking): 0.91 / 0.81. Every canvas is still classified as a cat."""
    rfs = fx.receptive_fields(efficientnet.model, efficientnet.layers)
    by_peak = {name: [] for name in ("stage6", "stage7", "head")}
    by_mean = []
    for background in BACKGROUNDS:
        for place in PLACES:
            img, box = pasted_face(place, background)
            acts = fx.capture_layers(efficientnet, img)
            assert 281 <= int(np.argmax(acts.probs)) <= 285, (place, background)  # a domestic cat
            for name, share in by_peak.items():
                lm = acts.layers[name]
                share.append(fx.peaks_inside(lm, rfs[name], lm.top(16, by="peak"), box) / 16)
            head = acts.layers["head"]
            by_mean.append(fx.peaks_inside(head, rfs["head"], head.top(16, by="mean"), box) / 16)
    for name, share in by_peak.items():
        assert np.mean(share) >= 0.85 and min(share) >= 0.6, (name, share)
    assert np.mean(by_mean) >= 0.8 and min(by_mean) >= 0.6, by_mean


# --- pictures ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["resnet", "shapes"])
def test_filter_images_are_the_weights(which, request):
    clf = request.getfixturevalue(which)
    w = clf.layers[clf.first_conv].weight.detach().numpy()
    images = fx.filter_images(clf.layers[clf.first_conv].weight)
    assert images.shape == (w.shape[0], w.shape[2], w.shape[3], 3)
    for f in range(w.shape[0]):
        lo, hi = w[f].min(), w[f].max()
        # undoing the per-filter stretch gives the weights back, channel 0 = red
        np.testing.assert_allclose(images[f].transpose(2, 0, 1) * (hi - lo) + lo, w[f], rtol=1e-5, atol=1e-6)
        assert images[f].min() == 0.0 and images[f].max() == 1.0
    tiles = fx.filter_tiles(images, cell=56)
    factor = tiles[0].shape[0] // w.shape[2]
    assert np.array_equal(tiles[0][::factor, ::factor], np.round(images[0] * 255).astype(np.uint8))


def test_a_flat_filter_is_mid_grey_and_non_rgb_layers_are_refused():
    w = np.zeros((2, 3, 3, 3), np.float32)
    w[1, 0, 1, 1] = 1.0
    images = fx.filter_images(w)
    assert np.all(images[0] == 0.5) and images[1][1, 1, 0] == 1.0 and images[1][0, 0, 0] == 0.0
    with pytest.raises(ValueError):
        fx.filter_images(np.zeros((4, 8, 3, 3)))


def test_heat_tiles_share_one_scale_or_stretch_each_map():
    import cv2

    maps = np.stack([np.full((4, 4), 1.0), np.linspace(0, 2, 16).reshape(4, 4)]).astype(np.float16)
    shared = fx.heat_tiles(maps, [0, 1], shared=True, cell=8)
    own = fx.heat_tiles(maps, [0, 1], shared=False, cell=8)
    assert shared[0].shape == (8, 8, 3)
    # on the shared scale the flat map of 1.0 has the colour of the middle of the other map
    assert np.array_equal(shared[0][0, 0], fx._colourise(np.array([[0.5]], np.float32), cv2.COLORMAP_VIRIDIS)[0, 0])
    assert np.array_equal(own[1][0, 0], shared[1][0, 0]) and len({tuple(p) for p in own[0].reshape(-1, 3)}) == 1


def test_a_unit_is_drawn_at_the_centre_of_its_field():
    rf = fx.ReceptiveField((38, 38), (8, 8), (3.5, 3.5))
    fmap = np.zeros((20, 20), np.float32)
    fmap[5, 12] = 1.0
    on_input = fx.map_to_input(fmap, rf, (160, 160))
    y, x = np.unravel_index(np.argmax(on_input), on_input.shape)
    cy, cx = rf.centre(5, 12)
    assert abs(y - cy) <= 0.5 and abs(x - cx) <= 0.5


def test_grid_image_holds_every_tile():
    tiles = [np.full((20, 20, 3), 10 * n, np.uint8) for n in range(10)]
    grid = fx.grid_image(tiles, [f"#{n}" for n in range(10)], cols=4, pad=4, label_h=18)
    assert grid.shape == (3 * (20 + 18 + 4) + 4, 4 * (90 + 4) + 4, 3)
    assert np.all(grid[4:24, 4:24] == 0) and np.all(grid[4:24, 98:118] == 10)


# --- the page ----------------------------------------------------------------------------


def _page(**query):
    """A fresh session on this page (opened through Home, like a shared link): tests.test_pages._page."""
    from tests.test_pages import _page as open_page

    return open_page(PAGE, **query)


def _captions(at) -> str:
    from tests.test_pages import _captions as captions

    return captions(at)


def test_page_shapes_choice_shows_the_shapes_cnn_layers(trained_models):
    """The sidebar's shapes choice (?clf=shapes-cnn): the shapes CNN on a synthetic canvas."""
    at = _page(clf="shapes-cnn")
    assert not at.exception, [e.value for e in at.exception]
    assert "Model: **Shapes CNN" in _captions(at)
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["conv1", "block1", "block2", "block3", "block4"]
    assert list(table["channels"]) == [8, 8, 16, 32, 64]
    assert list(table["receptive field (px)"]) == [3, 4, 10, 22, 38]
    assert list(table["map size"]) == ["160 × 160", "80 × 80", "40 × 40", "20 × 20", "20 × 20"]
    assert "**block2** outputs **16 channels** of **40×40** units" in _captions(at)
    assert any(b.label == "Download this grid (PNG)" for b in at.get("download_button"))

    at.select_slider[0].set_value(4).run()  # block4, without rerunning the network
    assert not at.exception
    assert "**block4** outputs **64 channels** of **20×20** units" in _captions(at)
    assert "Each unit sees a **38×38 px** window" in _captions(at)
    assert at.query_params["layer"] in ("4", ["4"])
    at.radio(key="fx.rank").set_value("peak").run()
    assert not at.exception and "highest peak activation" in _captions(at)


def test_page_link_sets_layer_and_count(trained_models):
    at = _page(clf="shapes-cnn", layer="1", maps="8", shape="5")
    assert not at.exception
    caps = _captions(at)
    assert "**block1** outputs **8 channels**" in caps and "Showing the 8 channels" in caps
    assert "synthetic" in caps and "#5" in caps


def test_activations_are_cached_per_image(trained_models, monkeypatch):
    """Moving a slider reads the cached activations: capture_layers is not called again."""
    calls = []
    real = fx.capture_layers
    monkeypatch.setattr(fx, "capture_layers", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = _page(clf="shapes-cnn", shape="4321")
    assert not at.exception
    first = len(calls)
    at.select_slider[0].set_value(3).run()
    at.slider[0].set_value(24).run()
    assert not at.exception and len(calls) == first


@pytest.fixture
def stand_in_resnet18(tmp_path, monkeypatch):
    """An untrained (seeded) ResNet-18 saved where the ImageNet weights would be, so the
    page takes its ResNet-18 path offline; every cache that held it is cleared afterwards
    (a later test with the real weights must not get this model)."""
    from components import classifier as cc
    from components import features as cf
    from models import registry

    torch.manual_seed(0)
    torch.save(registry.build_architecture("resnet18").state_dict(), tmp_path / registry.get_spec("resnet18").file)
    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))
    caches = (cc.classifier, cf.activations, cf.fields, cf.filters, cf.filter_grid)
    for cache in caches:
        cache.clear()
    yield tmp_path
    for cache in caches:
        cache.clear()


def test_page_resnet18_path_on_the_photo(stand_in_resnet18):
    """Same layers as the real ImageNet model (weights do not change shapes or fields)."""
    at = _page(clf="resnet18")
    assert not at.exception, [e.value for e in at.exception]
    assert not any("Offline demonstration" in i.value for i in at.info)
    table = at.dataframe[0].value
    assert list(table["channels"]) == [64, 64, 128, 256, 512]
    assert list(table["map size"]) == ["112 × 112", "56 × 56", "28 × 28", "14 × 14", "7 × 7"]
    assert list(table["receptive field (px)"]) == [7, 43, 99, 211, 435]
    assert "on Astronaut" in _captions(at)
    at.select_slider[0].set_value(4).run()
    assert not at.exception and "**layer4** outputs **512 channels** of **7×7** units" in _captions(at)


@pytest.mark.real_weights
def test_page_with_real_resnet18_sees_the_cat(real_weights):
    real_weights("resnet18")
    from components import classifier as cc
    from components import features as cf

    caches = (cc.classifier, cf.activations, cf.fields, cf.filters, cf.filter_grid)
    for cache in caches:
        cache.clear()
    try:
        at = _page(img="chelsea", clf="resnet18", layer="4")
        assert not at.exception, [e.value for e in at.exception]
        guess = _captions(at).split("top guesses:", 1)[1].split("\n", 1)[0]
        assert "cat" in guess.split(",")[0], guess  # tabby / tiger cat / Egyptian cat first
        assert list(at.dataframe[0].value["channels"]) == [64, 64, 128, 256, 512]
    finally:
        for cache in caches:
            cache.clear()


def test_page_on_a_photo_shows_efficientnet_lite0_layers_and_fields():
    """The default on a photo is EfficientNet-Lite0 (tests/test_photo_saliency.py checks the
    model caption and the cat): its nine layers with the hand-derived fields in the table, and
    the layer slider reaching the head without rerunning the network."""
    at = _page(img="chelsea")
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["layer"]) == list(EFFICIENTNET)
    assert list(table["receptive field (px)"]) == [v[0] for v in EFFICIENTNET.values()]
    assert list(table["stride (px)"]) == [v[1] for v in EFFICIENTNET.values()]
    assert list(table["channels"]) == [32, 16, 24, 40, 80, 112, 192, 320, 1280]
    assert "First-layer filters (conv_stem)" in [h.value for h in at.subheader]
    at.select_slider[0].set_value(8).run()  # the head
    assert not at.exception
    assert "**head** outputs **1280 channels** of **7×7** units" in _captions(at)
    assert "Each unit sees a **851×851 px** window" in _captions(at)
