"""Semantic segmentation: the pure map functions, the torchvision path, the net trained here
on shapes scenes, and the page (offline path) — every number the page shows is checked
against the pure function on the same input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import semantic as sem
from core.shapes import SHAPE_CLASSES, make_scene
from models import registry, shapes_seg

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/04_Semantic_segmentation.py"
# The shipped net's mean IoU (background included) on the 200 held-out scenes is 0.77
# (models/trained/manifest.json); re-measured here on other scenes through the page's path.
MIOU_BAR = 0.65


@pytest.fixture(scope="session")
def trained_shapes_seg():
    """The project's own semantic net, shipped in models/trained."""
    return shapes_seg.load_shapes_seg()


# --- pure functions ---------------------------------------------------------------------------


def test_class_shares_sum_to_one_and_match_a_hand_count():
    classes = np.array([[0, 0, 1], [2, 2, 2]], np.uint8)
    shares = sem.class_shares(classes, 4)
    assert shares.tolist() == [2 / 6, 1 / 6, 3 / 6, 0.0]
    rng = np.random.default_rng(0)
    big = rng.integers(0, 21, size=(37, 53)).astype(np.uint8)
    assert sem.class_shares(big, 21).sum() == pytest.approx(1.0)


def test_legend_lists_present_classes_largest_first_with_their_confidence():
    classes = np.array([[0, 0, 1], [2, 2, 2]], np.uint8)
    conf = np.array([[0.5, 0.7, 0.9], [1.0, 0.8, 0.6]], np.float16)
    result = sem.SemanticMap(classes, conf, ("background", "a", "b", "c"), "m", 1.0, "cpu", (3, 2))
    rows = sem.legend(result)
    assert [(r["class"], r["pixels"]) for r in rows] == [("b", 3), ("background", 2), ("a", 1)]
    assert [r["share"] for r in rows] == [0.5, 2 / 6, 1 / 6]
    assert rows[0]["mean confidence"] == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize("pred, truth, n, expected", [
    ([[0, 1], [1, 1]], [[0, 1], [0, 1]], 2, (1 / 2 + 2 / 3) / 2),  # class 0: 1/2, class 1: 2/3
    ([[0, 1], [1, 1]], [[0, 1], [0, 1]], 5, (1 / 2 + 2 / 3) / 2),  # absent classes are ignored
    ([[2, 2], [0, 0]], [[2, 2], [0, 0]], 3, 1.0),
    ([[1, 1], [1, 1]], [[0, 0], [0, 0]], 2, 0.0),
])
def test_mean_iou_hand_computed(pred, truth, n, expected):
    assert sem.mean_iou(np.array(pred), np.array(truth), n) == pytest.approx(expected)


def test_confusion_rows_are_truth_columns_predictions():
    conf = sem.confusion(np.array([0, 1, 1, 1]), np.array([0, 1, 0, 1]), 2)
    assert conf.tolist() == [[1, 1], [0, 2]]


def test_palette_is_pascal_voc_colour_map():
    p = sem.palette(21)
    assert p[0].tolist() == [0, 0, 0] and p[1].tolist() == [128, 0, 0] and p[15].tolist() == [192, 128, 128]
    assert len({tuple(c) for c in p}) == 21


def test_overlay_blends_only_labelled_pixels():
    rgb = np.full((2, 3, 3), 100, np.uint8)
    classes = np.array([[0, 1, 1], [0, 0, 2]], np.uint8)
    colours = sem.palette(3)
    assert np.array_equal(sem.overlay(rgb, classes, colours, opacity=0.0), rgb)
    full = sem.overlay(rgb, classes, colours, opacity=1.0)
    assert np.array_equal(full[classes == 0], rgb[classes == 0])
    assert np.array_equal(full[classes > 0], colours[classes[classes > 0]])
    assert np.array_equal(sem.colourise(classes, colours)[0, 1], colours[1])


def test_isolate_keeps_one_class_and_greys_the_rest():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 200  # red everywhere
    classes = np.array([[1, 0], [2, 1]], np.uint8)
    out = sem.isolate(rgb, classes, 1, sem.palette(3), opacity=0.0, dim=0.5)
    assert np.array_equal(out[classes == 1], rgb[classes == 1])
    other = out[classes != 1]
    assert (other[:, 0] == other[:, 1]).all() and (other[:, 1] == other[:, 2]).all()  # grey
    assert (other[:, 0] == round(200 * 0.299 * 0.5)).all()  # dimmed
    assert not np.array_equal(out, sem.isolate(rgb, classes, 2, sem.palette(3), opacity=0.0, dim=0.5))


@pytest.mark.parametrize("with_colours", [True, False])
def test_label_png_round_trips_exactly(with_colours):
    classes = np.random.default_rng(1).integers(0, 21, size=(45, 67)).astype(np.uint8)
    colours = sem.palette(21) if with_colours else None
    data = sem.encode_label_png(classes, colours)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(sem.decode_label_png(data), classes)
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (67, 45)
        if with_colours:  # a viewer shows the legend's colours
            assert np.array_equal(np.asarray(im.convert("RGB")), sem.colourise(classes, colours))


def test_label_png_refuses_non_label_arrays():
    with pytest.raises(ValueError):
        sem.encode_label_png(np.zeros((4, 4), np.int64))
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    with pytest.raises(ValueError):
        sem.decode_label_png(buf.getvalue())


def test_count_regions_merges_touching_pixels():
    mask = np.zeros((10, 10), bool)
    mask[1:4, 1:4] = True
    mask[6:9, 6:9] = True
    assert sem.count_regions(mask) == 2
    mask[3:7, 3:7] = True  # a bridge: two people touching become one region
    assert sem.count_regions(mask) == 1


def test_scene_class_map_labels_visible_pixels():
    scene = make_scene(5, **shapes_seg.SCENE)
    truth = shapes_seg.scene_class_map(scene)
    assert truth.shape == scene.image.shape[:2] and truth.dtype == np.uint8
    assert (truth == 0).sum() == (~scene.masks.any(0)).sum()
    for mask, label in zip(scene.masks, scene.labels):
        assert (truth[mask] == 1 + label).all()
    assert shapes_seg.SEG_CLASSES == ("background", *SHAPE_CLASSES)


# --- torchvision path (untrained but seeded networks: no download) ----------------------------


@pytest.mark.parametrize("name", ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"])
def test_torchvision_path_is_argmax_of_the_models_own_output(name):
    import torchvision
    from torch.nn import functional as F

    from components.semantic import load_segmenter

    torch.manual_seed(0)
    model = registry.for_inference(registry.build_architecture(name))
    spec = registry.get_spec(name)
    transforms = torchvision.models.get_weight(spec.tv_weights).transforms()
    seg = sem.Segmenter(name, spec.title, model, sem.torchvision_preprocess(transforms), registry.categories(name))
    rgb = np.random.default_rng(2).integers(0, 256, size=(90, 130, 3)).astype(np.uint8)
    result = seg.run(rgb)
    assert result.classes.shape == (90, 130) and result.size == (130, 90)
    assert min(result.input_size) == 520  # weights.transforms(): shorter side resized to 520
    assert result.categories[0] == "background" and len(result.categories) == 21
    with torch.inference_mode():
        x = transforms(torch.from_numpy(rgb).permute(2, 0, 1))[None]
        out = model(x)["out"]
        ref = F.interpolate(out, size=(90, 130), mode="bilinear", align_corners=False)[0]
        probs = torch.softmax(ref, 0)
    assert np.array_equal(result.classes, ref.argmax(0).numpy())
    np.testing.assert_allclose(result.confidence.astype(np.float32), probs.max(0).values.numpy(), atol=2e-3)
    assert "deeplab" not in name or hasattr(model.classifier[0], "convs")  # DeepLab's ASPP
    with pytest.raises(registry.WeightsUnavailable):
        load_segmenter(name)  # offline tests: no real weights, a clear error


# --- the net trained here ------------------------------------------------------------------------


def test_seg_net_is_small_and_fully_convolutional():
    model = shapes_seg.ShapesSegNet().eval()
    n = sum(p.numel() for p in model.parameters())
    assert 20_000 < n < 100_000
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 96)).shape == (1, 7, 128, 96)
    assert shapes_seg.input_size(256, 256) == (128, 128) and shapes_seg.input_size(300, 150) == (128, 64)


def test_trained_net_mean_iou_on_held_out_scenes(trained_shapes_seg):
    metrics = shapes_seg.load_metrics()
    assert metrics["n_eval"] == 200 and metrics["eval_seeds"][0] >= 100_000
    assert shapes_seg.TRAIN_SEED_START + metrics["n_train"] <= shapes_seg.EVAL_SEED_START  # disjoint
    assert metrics["mean_iou"] >= MIOU_BAR, metrics
    # Re-measured now on other held-out scenes, through the page's own code path.
    from components.semantic import load_segmenter

    seg = load_segmenter("shapes-seg", warmup=False)
    total = np.zeros((7, 7), np.int64)
    for seed in range(200_000, 200_040):
        scene = shapes_seg.segmentation_scene(seed)
        total += sem.confusion(seg.run(scene.image).classes, shapes_seg.scene_class_map(scene), 7)
    assert np.nanmean(sem.iou_per_class(total)) >= MIOU_BAR


# --- the page (offline path) ----------------------------------------------------------------------


def _offline_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))  # no torchvision weights: the shipped shapes FCN


def _page(**query):
    """A fresh session on this page (opened through Home, like a shared link): tests.test_pages._page."""
    from tests.test_pages import _page as open_page

    return open_page(PAGE, **query)


def _images(at):
    """(url, caption) of every picture on the page, main area first (sidebar preview last)."""
    return [(img.url, img.caption) for el in at.get("image") for img in el.proto.imgs]


def _image_urls(at) -> list[str]:
    return [url for url, _ in _images(at)]


def _image_captions(at) -> str:
    return "\n".join(caption for _, caption in _images(at))


@pytest.fixture
def counted_runs(monkeypatch):
    """Count forward passes of every Segmenter (and start with an empty result cache)."""
    from components import semantic as cs

    calls = []
    original = sem.Segmenter.run

    def run(self, rgb):
        calls.append((self.name, rgb.shape))
        return original(self, rgb)

    monkeypatch.setattr(sem.Segmenter, "run", run)
    cs.segment.clear()
    return calls


def test_offline_page_shows_the_pure_functions_numbers(trained_shapes_seg, tmp_path, monkeypatch, counted_runs):
    _offline_weights(tmp_path, monkeypatch)
    at = _page(scene="11")
    assert not at.exception, [e.value for e in at.exception]
    warnings = "\n".join(w.value for w in at.warning)
    assert "deeplabv3_mobilenet_v3_large-fc3c493d.pth" in warnings and "lraspp_mobilenet_v3_large" in warnings
    assert any("Offline demonstration" in i.value for i in at.info)

    def passes() -> int:  # forward passes on the 256 px scene so far (not the 128 px warm-up)
        return len([c for c in counted_runs if c[1][:2] == (256, 256)])

    assert passes() == 1

    # Same scene, same net, computed here without Streamlit.
    from components.semantic import load_segmenter

    scene = shapes_seg.segmentation_scene(11)
    expected = load_segmenter("shapes-seg", warmup=False).run(scene.image)
    truth = shapes_seg.scene_class_map(scene)
    live = sem.mean_iou(expected.classes, truth, 7)
    stored = shapes_seg.load_metrics()
    captions = "\n".join(c.value for c in at.caption)
    assert f"Against this scene's true labels: mean IoU {live:.2f}" in captions
    assert f"Mean IoU on 200 held-out scenes: {stored['mean_iou']:.2f}" in captions
    table = at.dataframe[0].value
    shares = sem.class_shares(expected.classes, 7)
    assert {r["class"]: r["share"] for r in table.to_dict("records")} == {
        shapes_seg.SEG_CLASSES[i]: f"{100 * shares[i]:.2f} %" for i in np.flatnonzero(shares)}
    assert sum(table["pixels"]) == truth.size
    # Semantic vs instance section: offline, the scene's true instance masks (labelled as such).
    assert "true** instance masks (ground truth, not a model" in _image_captions(at)

    # Opacity: the cached map is redrawn, the network is not rerun.
    seen = passes()  # the page's pass and this test's own
    before = _image_urls(at)
    at.slider(key="seg.opacity").set_value(0.9).run()
    assert not at.exception
    assert passes() == seen
    assert _image_urls(at)[0] != before[0]
    assert at.query_params["opacity"] in ("0.9", ["0.9"])

    # Isolating a class changes the picture (and still no forward pass).
    shape = next(r["class"] for r in table.to_dict("records") if r["class"] != "background")
    at.selectbox(key="seg.focus").set_value(shape).run()
    assert not at.exception
    after = _image_urls(at)
    assert after[0] != before[0]
    assert f"Only '{shape}'" in _image_captions(at)
    assert passes() == seen


def test_offline_page_compares_with_the_scenes_true_instances(trained_shapes_seg, tmp_path, monkeypatch):
    """Scene 0 (the default) holds three circles: one 'circle' class region, three instances."""
    _offline_weights(tmp_path, monkeypatch)
    at = _page()
    assert not at.exception, [e.value for e in at.exception]
    captions = _image_captions(at)
    assert "Instance: 3 separate 'circle' mask(s)" in captions and "ground truth" in captions, captions
    assert "every 'circle' pixel carries the same label" in captions


def test_offline_page_bad_link_values_give_notices(trained_shapes_seg, tmp_path, monkeypatch):
    _offline_weights(tmp_path, monkeypatch)
    at = _page(opacity="7", scene="banana")
    assert not at.exception
    notices = "\n".join(i.value for i in at.info)
    assert "`opacity`" in notices and "`scene`" in notices
    assert at.slider(key="seg.opacity").value == 0.55


# --- real weights ----------------------------------------------------------------------------------


@pytest.mark.real_weights
def test_deeplab_real_weights_find_the_astronaut(real_weights):
    real_weights("deeplabv3_mobilenet_v3_large")
    from components.semantic import load_segmenter
    from core.images import load_sample

    image = load_sample("astronaut")
    result = load_segmenter("deeplabv3_mobilenet_v3_large").run(image.work)
    shares = dict(zip(result.categories, sem.class_shares(result.classes, 21)))
    assert shares["person"] > 0.15, shares
    at = _page()
    assert not at.exception
    assert "person" in set(at.dataframe[0].value["class"])
