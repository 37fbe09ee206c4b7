"""Data augmentation: boxes and masks follow the image through torchvision.transforms.v2
(checked by hand against flips and a 90-degree rotation), crops keep boxes inside, erasing
touches only its rectangle, grids are seeded, MixUp/CutMix labels match their pixels, the
stability figures on Chelsea are what EfficientNet-Lite0 (installed with the lab: never skipped)
says on each draw and fall when the draws hide the cat, and a shapes CNN trained on few crops
with augmentation beats the same one trained without."""

from __future__ import annotations

import numpy as np
import pytest

from core import augment as aug

PAGE = "pages/20_Data_augmentation.py"
# With minus without augmentation at the defaults (200 crops, 25 epochs, flips), seed 0, from `python -m
# benchmark.spread --only augment` on a 2-core AMD EPYC: +0.092 with AVX-512 kernels, +0.132 with AVX2 kernels
# (ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2); one seed moves by 0.025 (sd) between the two kernel
# paths. The bar sits under seed 0's lower value minus 3 x 0.025 (0.017). The effect is small and
# seed-dependent at these defaults: seeds 0-9 gave -0.105 to +0.21 (mean +0.045; 6 of 20 runs below 0), so
# the test holds seed 0 to its own spread, not to a general claim.
MARGIN = 0.015


@pytest.fixture(scope="module")
def scene():
    return aug.scene_sample(11, size=256)


def _within(inner, outer, tol=1.0):
    return (inner[0] >= outer[0] - tol and inner[1] >= outer[1] - tol
            and inner[2] <= outer[2] + tol and inner[3] <= outer[3] + tol)


# --- geometry: boxes and masks move with the image -------------------------------------------------


def test_horizontal_flip_mirrors_boxes_masks_and_pixels_by_hand(scene):
    out = aug.augment(scene, (("hflip", 1.0),), seed=0, n=1)[0]
    W = scene.image.shape[1]
    assert len(scene.labels) >= 2
    expected = scene.boxes.copy()
    expected[:, 0], expected[:, 2] = W - scene.boxes[:, 2], W - scene.boxes[:, 0]
    np.testing.assert_allclose(out.boxes, expected, atol=1e-4)
    np.testing.assert_array_equal(out.masks, scene.masks[:, :, ::-1])
    np.testing.assert_array_equal(out.image, scene.image[:, ::-1])
    np.testing.assert_array_equal(out.labels, scene.labels)


def test_photo_box_flips_too():
    rgb = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    s = aug.photo_sample(rgb, (0.3, 0.4, 0.2, 0.3))
    x1, y1, x2, y2 = s.boxes[0]
    assert aug.tight_box(s.masks[0]) == (x1, y1, x2, y2)  # the ellipse fills its box
    out = aug.augment(s, (("hflip", 1.0),), n=1)[0]
    np.testing.assert_allclose(out.boxes[0], [300 - x2, y1, 300 - x1, y2], atol=1e-4)


def test_rotation_by_90_degrees_moves_mask_and_box_together(scene):
    from torchvision.transforms import v2

    pipe = v2.Compose([v2.RandomRotation((90, 90)), v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes()])
    out = aug.apply(scene, pipe)
    assert len(out.labels) == len(scene.labels)
    for before, box, mask in zip(scene.masks, out.boxes, out.masks):
        # counter-clockwise by 90 degrees, like np.rot90 (allow the one-pixel centre convention)
        assert (mask != np.rot90(before)).mean() < 0.01
        np.testing.assert_allclose(box, aug.tight_box(mask), atol=1.0)


def test_a_45_degree_rotation_loosens_the_box_but_it_still_holds_the_mask(scene):
    from torchvision.transforms import v2

    out = aug.apply(scene, v2.Compose([v2.RandomRotation((45, 45)), v2.ClampBoundingBoxes(),
                                       v2.SanitizeBoundingBoxes()]))
    for box, mask in zip(out.boxes, out.masks):
        assert _within(aug.tight_box(mask), box)
    assert aug.box_looseness(out) < 0.9  # rotated boxes are bigger than what they hold


@pytest.mark.parametrize("seed", range(5))
def test_every_box_stays_inside_the_image_after_crops(scene, seed):
    settings = (("crop", 0.1), ("rotate", 40.0))
    H, W = scene.image.shape[:2]
    for out in aug.augment(scene, settings, seed=seed, n=6):
        assert out.image.shape == scene.image.shape
        assert len(out.boxes) == len(out.masks) == len(out.labels)
        if len(out.boxes):
            b = out.boxes
            assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= W).all() and (b[:, 3] <= H).all()
            assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        for box, mask in zip(out.boxes, out.masks):
            if mask.any():
                assert _within(aug.tight_box(mask), box, tol=1.5)


def test_erasing_changes_pixels_only_inside_its_rectangle(scene):
    import torch

    pipe = aug.build((("erase", 0.3),), scene.image.shape[:2])
    erase = pipe.transforms[0]
    inputs = aug._to_inputs(scene)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        assert erase.p == 1.0 and torch.rand(1) < erase.p  # what forward() draws first, to decide whether to erase
        params = erase.make_params([inputs["image"]])
    i, j, h, w = (int(params[k]) for k in ("i", "j", "h", "w"))
    assert h > 0 and w > 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        out = aug.apply(scene, pipe)
    changed = (out.image != scene.image).any(axis=2)
    inside = np.zeros_like(changed)
    inside[i:i + h, j:j + w] = True
    assert changed[~inside].sum() == 0
    assert changed[inside].mean() > 0.9  # random values: almost every erased pixel differs
    np.testing.assert_array_equal(out.masks, scene.masks)  # erasing leaves annotations alone
    np.testing.assert_allclose(out.boxes, scene.boxes)


def test_photometric_transforms_leave_boxes_and_masks_alone(scene):
    settings = (("jitter", 0.8), ("blur", 3.0), ("noise", 0.2))
    for out in aug.augment(scene, settings, seed=1, n=3):
        np.testing.assert_allclose(out.boxes, scene.boxes)
        np.testing.assert_array_equal(out.masks, scene.masks)
        assert (out.image != scene.image).any()


def test_same_seed_same_grid_other_seed_other_grid(scene):
    settings = tuple((k, TRANSFORM[1]) for k, TRANSFORM in aug.TRANSFORMS.items())
    a = aug.augment(scene, settings, seed=3)
    b = aug.augment(scene, settings, seed=3)
    c = aug.augment(scene, settings, seed=4)
    assert len(a) == aug.GRID[0] * aug.GRID[1]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.boxes, y.boxes)
    assert any((x.image != z.image).any() for x, z in zip(a, c))
    assert len({x.image.tobytes() for x in a}) == len(a)  # twelve different draws


def test_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        aug.normalise_settings({"solarise": 1.0})


# --- MixUp / CutMix ---------------------------------------------------------------------------------


def test_mixup_image_is_the_label_weighted_blend(scene):
    crop, _ = aug.shape_crop(2)
    m = aug.mix_pair(scene.image, crop, "mixup", alpha=1.0, seed=7, side=96)
    lam = m["label"][0]
    assert sum(m["label"]) == pytest.approx(1.0) and 0 < lam < 1
    a, b = (x.astype(float) for x in m["inputs"])
    np.testing.assert_allclose(m["image"], lam * a + (1 - lam) * b, atol=1.0)
    assert aug.mix_pair(scene.image, crop, "mixup", seed=7, side=96)["label"] == m["label"]


def test_cutmix_label_is_the_share_of_pasted_pixels(scene):
    crop, _ = aug.shape_crop(2)
    for seed in range(4):
        m = aug.mix_pair(scene.image, crop, "cutmix", alpha=1.0, seed=seed, side=96)
        assert m["label"][0] == pytest.approx(m["from_a"], abs=0.02)


# --- stability ---------------------------------------------------------------------------------------


def test_stability_by_hand():
    cats = ("a", "b", "c")
    base = np.array([0.7, 0.2, 0.1])
    draws = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.9, 0.05, 0.05], [0.4, 0.1, 0.5]])
    s = aug.stability(base, draws, cats)
    assert s["base"] == "a" and s["agreement"] == 0.5
    assert [r["top1"] for r in s["rows"]] == ["a", "b", "a", "c"]
    assert s["mean_confidence"] == pytest.approx((0.6 + 0.5 + 0.9 + 0.5) / 4)
    assert s["mean_p_base_class"] == pytest.approx((0.6 + 0.2 + 0.9 + 0.4) / 4)
    assert s["distinct"] == 3


EFFICIENTNET = "efficientnet_lite0"
CATS = range(281, 286)  # ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat
MILD = (("hflip", 0.5), ("rotate", 10.0), ("jitter", 0.2))
HEAVY = (("rotate", 90.0), ("erase", 0.4), ("cutout", 0.4))  # a black square of 40 % + random erasing + turns


def test_on_chelsea_mild_draws_keep_the_cat_and_heavy_occlusion_loses_it(efficientnet):
    """The page's stability figures (components.augment.stability, the twelve seeded draws) on Chelsea.
    Measured on grid seeds 0-4: mild draws keep a cat top-1 in 12 of 12 draws every time (agreement with
    the un-augmented "Egyptian cat" 100 %, mean p(Egyptian cat) 0.75); the heavy occlusion keeps a cat in
    2-5 of 12 (share 0.17-0.42, mean p(Egyptian cat) 0.11). The network is pretrained and the draws
    seeded: only float rounding differs between CPUs. The test runs seed 0."""
    from components import augment as ca
    from core.images import load_sample

    clf = efficientnet
    image = load_sample("chelsea").work
    ca.stability.clear()
    try:
        mild, heavy = (ca.stability(EFFICIENTNET, "cpu", "chelsea", aug.normalise_settings(settings), 0, clf, image)
                       for settings in (MILD, HEAVY))
    finally:
        ca.stability.clear()
    alone = [clf.top(clf.probs(im), 1)[0] for im in heavy["images"]]  # each draw shown, on its own
    assert [r["top1"] for r in heavy["rows"]] == [t.name for t in alone]
    assert [r["confidence"] for r in heavy["rows"]] == pytest.approx([t.probability for t in alone], abs=1e-4)
    for s in (mild, heavy):
        assert s["agreement"] == pytest.approx(np.mean([r["top1"] == s["base"] for r in s["rows"]]))
        assert s["base"] == "Egyptian cat"

    def cats(s) -> int:
        return sum(clf.index_of(r["top1"]) in CATS for r in s["rows"])

    assert cats(mild) == 12 and mild["agreement"] >= 11 / 12, (cats(mild), mild["agreement"])
    assert cats(heavy) <= 6, [r["top1"] for r in heavy["rows"]]
    assert mild["mean_p_base_class"] >= heavy["mean_p_base_class"] + 0.4, (mild["mean_p_base_class"],
                                                                          heavy["mean_p_base_class"])


# --- training with and without augmentation ----------------------------------------------------------


def test_batch_hook_draws_per_crop_and_keeps_shape():
    import torch

    hook = aug.batch_hook(("flips", "crop", "jitter"))
    from models.shapes_cnn import torch_threads

    x = torch.rand(8, 3, 64, 64)
    with torch.random.fork_rng(devices=[]), torch_threads(1):  # as inside core.livetrain.train
        torch.manual_seed(0)
        out = hook(None, x, None)
    assert out.shape == x.shape and 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert len({tuple(o.flatten()[:50].tolist()) for o in (out - x)}) == 8  # each crop its own draw
    with pytest.raises(ValueError, match="unknown"):
        aug.batch_hook(("mosaic",))


def test_same_seed_same_training_curves():
    quiet = lambda *a, **k: None  # noqa: E731
    a = aug.compare(n_train=48, epochs=2, seed=1, n_test=64, progress=quiet)
    b = aug.compare(n_train=48, epochs=2, seed=1, n_test=64, progress=quiet)
    assert a["curve"] == b["curve"] and a["final"] == b["final"]
    assert [r["model"] for r in a["curve"]] == ["without augmentation"] * 2 + ["with augmentation"] * 2
    assert a["curve"][0]["loss"] != a["curve"][2]["loss"]  # the hook really changed the batches


# --- the page (offline path: the shapes CNN on a synthetic shape; the grid on the Astronaut) ------------


def _page(**query):
    from tests.test_pages import _page as open_page

    return open_page(PAGE, **query)


def _text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in (at.success, at.warning, at.info):
        parts += [e.value for e in kind]  # noqa: PERF401
    return "\n".join(parts)


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _charts(at) -> list[tuple[str, list[dict]]]:
    import pyarrow as pa

    return [(el.proto.spec, pa.ipc.open_stream(el.proto.data.data).read_all().to_pylist())
            for el in at.get("vega_lite_chart")]


def test_page_shows_grid_mix_and_stability_with_the_shapes_cnn(trained_models):
    at = _page(src="Synthetic shapes scene", scene="11", on_hflip="1", hflip="1", on_rotate="0", on_crop="0",
               on_jitter="1", seed="3", mix="CutMix", clf="shapes-cnn")  # chosen in the sidebar: fast, 64 px
    assert not at.exception, [e.value for e in at.exception]
    assert "Offline demonstration" not in _text(at) and "🧠 Model: **Shapes CNN" in _text(at)
    n = len(aug.scene_sample(11).labels)
    assert _metric(at, "Instances kept per draw") == f"{n}.0 of {n}"  # flips and jitter keep every shape
    assert _metric(at, "Box vs mask fit (mean IoU)") == "1.00"  # no rotation: boxes still hug the masks
    images = at.get("image")
    assert len(images) >= 1 + 12 + 3 + 12  # original, grid, MixUp pair + result, stability grid
    bars = _charts(at)[0][1]
    assert len(bars) == 2 and sum(r["weight"] for r in bars) == pytest.approx(1.0)
    assert "share of pixels" in _text(at)
    agree = _metric(at, "Draws that agree")
    assert agree.endswith("%") and 0 <= int(agree[:-1]) <= 100
    assert "Not trained yet" in _text(at)
    at.checkbox(key="aug.on_rotate").check().run()  # rotations loosen the boxes
    assert not at.exception
    assert float(_metric(at, "Box vs mask fit (mean IoU)")) < 1.0


def test_page_trains_with_and_without_augmentation_on_a_button(trained_models):
    from components import augment as ca

    ca.run_compare.clear()
    at = _page(n="150", epochs="2", tseed="1")
    at.button(key="aug.train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    curve = next(rows for spec, rows in _charts(at) if "held-out accuracy" in spec)
    for name in ("without augmentation", "with augmentation"):
        assert [r["epoch"] for r in curve if r["model"] == name] == [1, 2]
    last = {r["model"]: r["test_accuracy"] for r in curve if r["epoch"] == 2}
    assert _metric(at, "With augmentation (held-out)") == f"{last['with augmentation']:.1%}"
    assert _metric(at, "Without augmentation (held-out)") == f"{last['without augmentation']:.1%}"
    assert "every crop of every batch its own random draw of: " + aug.TRAIN_AUGS["flips"] in _text(at)
    assert "Training took" in _text(at)
    assert any(b.label.startswith("Download accuracy curves") for b in at.get("download_button"))
    at.run()
    assert at.button(key="aug.train").disabled  # this session already has these settings
    ca.run_compare.clear()


@pytest.mark.real_weights
def test_page_with_real_resnet18_on_the_photo(real_weights):
    real_weights("resnet18")
    from components import augment as ca
    from components import classifier as cc

    caches = (cc.classifier, ca.stability)
    for cache in caches:
        cache.clear()
    try:
        at = _page(img="chelsea", on_rotate="0", on_crop="0", on_jitter="0", on_hflip="1", hflip="1", clf="resnet18")
        assert not at.exception, [e.value for e in at.exception]
        assert not any("Offline demonstration" in i.value for i in at.info)
        assert "ResNet\\-18" in _text(at)
        assert "cat" in _metric(at, "Un-augmented prediction")
        assert _metric(at, "Draws that agree") == "100%"  # a mirrored cat is the same cat
    finally:
        for cache in caches:
            cache.clear()


def _image_captions(at) -> list[str]:
    return [c for im in at.get("image") for c in im.captions]


def test_page_on_chelsea_runs_efficientnet_and_its_agreement_follows_the_transforms():
    from components import augment as ca

    ca.stability.clear()
    try:
        at = _page(img="chelsea", on_rotate="0", on_crop="0", on_jitter="0", on_hflip="1", hflip="1")
        assert not at.exception, [e.value for e in at.exception]
        assert "Offline demonstration" not in _text(at)
        model = [c.value for c in at.caption if c.value.startswith("🧠 Model:")]
        assert len(model) == 1 and "EfficientNet\\-Lite0" in model[0] and "Chelsea the cat" in model[0]
        assert _metric(at, "Un-augmented prediction") == "Egyptian cat"
        assert _metric(at, "Draws that agree") == "100%"  # a mirrored cat is the same cat (12 of 12 here)
        assert sum(c.startswith("✅ Egyptian cat") for c in _image_captions(at)) == 12
        at = _page(img="chelsea", on_hflip="0", on_crop="0", on_jitter="0",  # the HEAVY settings above
                   on_rotate="1", rotate="90", on_erase="1", erase="0.4", on_cutout="1", cutout="0.4")
        assert not at.exception, [e.value for e in at.exception]
        assert _metric(at, "Un-augmented prediction") == "Egyptian cat"
        agree = int(_metric(at, "Draws that agree").rstrip("%"))
        assert agree <= 50, agree  # measured 25 % (grid seed 0)
        wrong = sum(c.startswith("❌") for c in _image_captions(at))
        assert wrong == round(12 * (1 - agree / 100))  # the metric counts the crosses under the draws
    finally:
        ca.stability.clear()


@pytest.fixture(scope="module")
def default_comparison():
    """The page's default run (about 30 s of CPU on one core), trained once for this module."""
    return aug.compare(n_train=aug.TRAIN_N_DEFAULT, epochs=aug.TRAIN_EPOCHS_DEFAULT, seed=0, augs=aug.TRAIN_DEFAULT)


def test_with_augmentation_beats_without_on_few_crops(default_comparison):
    """At the page's defaults (200 crops) the plain CNN memorises its crops and stalls, while the one
    trained on flipped / 90-degree-rotated draws generalises better at seed 0 (see MARGIN for the spread)."""
    final = default_comparison["final"]
    assert final["with augmentation"] >= final["without augmentation"] + MARGIN, final
    # the plain model learnt something: a fair comparison (seed 0: 0.490 on both kernel paths; seeds 0-9: 0.38-0.56)
    assert final["without augmentation"] > 1 / 6 + 0.1
    curve = [r for r in default_comparison["curve"] if r["model"] == "without augmentation"]
    # ...and it fits its training crops: it overfits rather than underfits (seed 0: 0.032 / 0.037; seeds 0-9 <= 0.15)
    assert curve[-1]["loss"] < 0.3
