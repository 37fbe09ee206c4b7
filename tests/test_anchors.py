"""Anchor boxes page: exact agreement with torchvision's AnchorGenerator and Matcher, a
hand-computed matching case, YOLO stride attribution checked against ultralytics' predict,
and the page itself (offline shapes scene; real COCO weights where present)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from core import anchors as ca

PAGE = "pages/02_Anchor_boxes.py"


def _padded(height, width):
    """The batch torchvision's detectors build: GeneralizedRCNNTransform.batch_images (size_divisible=32)."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    transform = GeneralizedRCNNTransform(800, 1333, [0.0] * 3, [1.0] * 3)
    return transform.batch_images([torch.zeros(3, height, width)])


def _reference(height, width, sizes, ratios, strides):
    """torchvision's AnchorGenerator called the way a detector calls it (real tensors): the
    detector's padded batch, feature maps as stride-2 convolutions (3x3, padding 1) make them."""
    batch = _padded(height, width)
    gen = AnchorGenerator(sizes, (ratios,) * len(sizes))
    images = ImageList(batch, [(height, width)])
    down = torch.nn.Conv2d(3, 3, 3, stride=2, padding=1)
    feats, x = [], batch
    with torch.no_grad():
        for step in range(1, int(math.log2(max(strides))) + 1):
            x = down(x)
            if 2 ** step in strides:
                feats.append(x)
    return gen(images, feats)[0]


# (height, width, config, sizes torchvision is given, explicitly)
CASES = [
    (480, 640, ca.AnchorConfig(), ((32,), (64,), (128,), (256,), (512,))),
    (427, 640, ca.preset_config("fpn", "one", "frcnn", 32), ((32,), (64,), (128,), (256,), (512,))),
    (320, 320, ca.preset_config("retina", "octave", "frcnn", 32),
     ((32, 40, 50), (64, 80, 101), (128, 161, 203), (256, 322, 406), (512, 645, 812))),
    (300, 500, ca.preset_config("c4", "x124", "ssd", 128), ((128, 256, 512),)),
    (192, 192, ca.preset_config("p3p5", "one", "square", 16), ((16,), (32,), (64,))),
    (97, 211, ca.preset_config("p3p5", "octave", "ssd", 24), ((24, 30, 38), (48, 60, 76), (96, 120, 152))),
]


@pytest.mark.parametrize("height,width,config,sizes", CASES)
def test_anchors_equal_torchvision_anchor_generator(height, width, config, sizes):
    assert config.sizes() == sizes
    got = ca.generate(height, width, config)
    want = _reference(height, width, sizes, tuple(config.aspect_ratios), config.strides)
    assert torch.equal(torch.from_numpy(got.boxes.copy()), want)
    assert sum(lv.count for lv in got.levels) == len(want)
    assert got.padded_size == tuple(_padded(height, width).shape[-2:])
    for lv in got.levels:  # bookkeeping: grid and count per level
        assert lv.grid == (math.ceil(got.padded_size[0] / lv.stride), math.ceil(got.padded_size[1] / lv.stride))
        assert lv.count == lv.grid[0] * lv.grid[1] * config.per_cell


def test_presets_are_torchvisions_own_defaults():
    """The FPN / RetinaNet presets are the generators inside torchvision's detectors."""
    from torchvision.models.detection import faster_rcnn, retinanet

    for module, config in ((faster_rcnn, ca.preset_config("fpn", "one", "frcnn", 32)),
                           (retinanet, ca.preset_config("retina", "octave", "frcnn", 32))):
        gen = module._default_anchorgen()
        assert tuple(gen.sizes) == config.sizes() and tuple(gen.aspect_ratios[0]) == config.aspect_ratios
        padded = ca.padded_size(250, 380)
        feats = [torch.zeros(1, 1, *ca.grid_size(*padded, s)) for s in config.strides]
        want = gen(ImageList(torch.zeros(1, 3, *padded), [(250, 380)]), feats)[0]
        assert torch.equal(torch.from_numpy(ca.generate(250, 380, config).boxes.copy()), want)


# (detector builder, its anchor generator, the page's preset, height, width, anchors it lays out)
REAL_DETECTORS = [
    ("fasterrcnn_resnet50_fpn", lambda m: m.rpn.anchor_generator, ("fpn", "one", "frcnn", 32), 480, 640, 76_740),
    ("fasterrcnn_resnet50_fpn", lambda m: m.rpn.anchor_generator, ("fpn", "one", "frcnn", 32), 427, 640, None),
    ("retinanet_resnet50_fpn", lambda m: m.anchor_generator, ("retina", "octave", "frcnn", 32), 480, 640, None),
]


@pytest.mark.parametrize("builder,generator,preset,height,width,count", REAL_DETECTORS,
                         ids=[f"{r[0]}-{r[3]}x{r[4]}" for r in REAL_DETECTORS])
def test_anchors_are_the_real_detectors_own(builder, generator, preset, height, width, count):
    """The named detector itself (untrained, nothing downloaded), at this input size: its own
    transform pads the batch (to 32, not to the largest stride: 480 rows stay 480, so P6 has
    8 rows 60 px apart), its backbone makes the feature maps, its generator lays the anchors."""
    from torchvision.models import detection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = getattr(detection, builder)(weights=None, weights_backbone=None, min_size=height,
                                            max_size=width).eval()
    with torch.no_grad():
        images, _ = model.transform([torch.rand(3, height, width)])
        assert images.image_sizes == [(height, width)]  # no resize: the page's working size
        features = list(model.backbone(images.tensors).values())
        want = generator(model)(images, features)[0]
    got = ca.generate(height, width, ca.preset_config(*preset))
    assert got.padded_size == tuple(images.tensors.shape[-2:])
    assert [lv.grid for lv in got.levels] == [tuple(f.shape[-2:]) for f in features]
    assert len(got) == len(want) == (count or len(want))
    assert torch.equal(torch.from_numpy(got.boxes.copy()), want)


def test_centre_spacing_is_torchvisions_where_the_stride_does_not_divide_the_padded_size():
    anchors = ca.generate(480, 640, ca.preset_config("fpn", "one", "frcnn", 32))
    p6 = anchors.levels[-1]
    assert (p6.stride, p6.grid, p6.step) == (64, (8, 10), (60, 64))
    centres = anchors.centres(len(anchors.levels) - 1)
    assert sorted(set(centres[:, 1].tolist())) == [60.0 * r for r in range(8)]
    assert ca.locate(anchors, len(anchors.levels) - 1, 0.5, 1.0) == (5, 7)
    assert len(ca.generate(480, 640, ca.preset_config(), size_divisible=64)) == 81_840  # the old, padded grid


def test_cell_anchors_are_centred_on_the_cell_with_their_shape():
    config = ca.preset_config("fpn", "octave", "ssd", 32)
    anchors = ca.generate(300, 400, config)
    level, col, row = 2, 7, 5
    assert ca.locate(anchors, level, (col * 16 + 3) / 400, (row * 16 + 15) / 300) == (col, row)
    index = anchors.cell(level, col, row)
    boxes = anchors.boxes[index]
    assert np.array_equal((boxes[:, 0] + boxes[:, 2]) / 2, np.full(len(index), col * 16.0))
    assert np.array_equal((boxes[:, 1] + boxes[:, 3]) / 2, np.full(len(index), row * 16.0))
    for row_, box in zip(anchors.describe(index), boxes):
        w, h = box[2] - box[0], box[3] - box[1]
        assert (row_["col"], row_["row"], row_["stride"]) == (col, row, 16)
        assert math.sqrt(w * h) == pytest.approx(row_["size"], abs=1.5)  # corners are rounded to pixels
        assert h / w == pytest.approx(row_["aspect h:w"], rel=0.05)


# --- matching, by hand --------------------------------------------------------------------

OBJECTS = np.array([[0, 0, 10, 10], [40, 40, 60, 60]], np.float32)
HAND_ANCHORS = np.array([
    [0, 0, 10, 10],  # IoU 1.0 with object 0
    [0, 0, 10, 5],  # 50 / 100 = 0.5 with object 0
    [0, 0, 10, 2],  # 20 / 100 = 0.2 with object 0
    [20, 20, 30, 30],  # touches nothing
    [40, 40, 50, 50],  # 100 / 400 = 0.25 with object 1 (its best, tied)
    [50, 50, 60, 60],  # 100 / 400 = 0.25 with object 1 (tied)
], np.float32)
HAND_IOU = np.array([[1.0, 0.5, 0.2, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.25, 0.25]], np.float32)


def test_hand_computed_ious():
    ov = ca.overlaps(OBJECTS, HAND_ANCHORS)
    assert np.allclose(ca.full_iou(ov), HAND_IOU) and ov.touching.tolist() == [0, 1, 2, 4, 5]
    assert ov.best_anchor.tolist() == [0, 4] and np.allclose(ov.best_anchor_iou, [1.0, 0.25])
    assert ov.best_object.tolist() == [0, 0, 0, -1, 1, 1]  # -1: the anchor touches no object


@pytest.mark.parametrize("high,low,low_quality,labels,positives_per_object", [
    (0.7, 0.3, False, [1, -1, 0, 0, 0, 0], [1, 0]),  # one positive, one ignored; object 1 gets nothing
    (0.7, 0.3, True, [1, -1, 0, 0, 1, 1], [1, 2]),  # low-quality rule: both tied best anchors of object 1
    (0.5, 0.5, False, [1, 1, 0, 0, 0, 0], [2, 0]),  # IoU >= high is positive (0.5 counts)
    (0.2, 0.1, False, [1, 1, 1, 0, 1, 1], [3, 2]),
    (0.9, 0.0, False, [1, -1, -1, -1, -1, -1], [1, 0]),  # low 0: IoU 0 is not "< low", so ignored
])
def test_hand_computed_matching(high, low, low_quality, labels, positives_per_object):
    m = ca.match(ca.overlaps(OBJECTS, HAND_ANCHORS), high=high, low=low, low_quality=low_quality)
    assert m.labels.tolist() == labels
    assert (m.positives, m.ignored, m.negatives) == (labels.count(1), labels.count(-1), labels.count(0))
    assert m.positives_per_object().tolist() == positives_per_object


def test_matching_edge_cases():
    ov = ca.overlaps(np.zeros((0, 4), np.float32), HAND_ANCHORS)
    m = ca.match(ov, high=0.7, low=0.3, low_quality=True)
    assert (m.positives, m.ignored, m.negatives) == (0, 0, 6)
    with pytest.raises(ValueError):
        ca.match(ca.overlaps(OBJECTS, HAND_ANCHORS), high=0.3, low=0.5, low_quality=False)


@pytest.mark.parametrize("high,low,low_quality", [
    (0.7, 0.3, True), (0.7, 0.3, False), (0.5, 0.4, True), (0.5, 0.5, False), (0.6, 0.0, True), (0.9, 0.0, False),
    (1.0, 0.05, True),
])
def test_match_agrees_with_torchvision_matcher_on_a_real_layout(high, low, low_quality):
    """Full anchor layout, full IoU matrix straight into torchvision's Matcher: same labels
    (the page only feeds the Matcher the anchors that touch an object; this checks it is exact)."""
    from torchvision.models.detection._utils import Matcher
    from torchvision.ops import box_iou

    anchors = ca.generate(240, 320, ca.preset_config("fpn", "octave", "frcnn", 32))
    boxes = np.array([[10, 20, 120, 200], [150, 30, 310, 90], [200, 150, 230, 170], [300, 5, 318, 12]], np.float32)
    m = ca.match(ca.overlaps(boxes, anchors.boxes), high=high, low=low, low_quality=low_quality)
    want = Matcher(high, low, low_quality)(box_iou(torch.from_numpy(boxes), torch.from_numpy(anchors.boxes.copy())))
    want = want.numpy()
    assert np.array_equal(m.labels, np.where(want >= 0, 1, np.where(want == -2, -1, 0)))
    assert np.array_equal(m.matched, np.where(want >= 0, want, -1))
    rows = ca.level_table(anchors, m)
    assert sum(r["positive"] for r in rows) == m.positives and sum(r["anchors"] for r in rows) == len(anchors)


# --- the page's log-scale charts ----------------------------------------------------------


def _log_bars_draw(spec: dict, values: list) -> None:
    """Every bar of ``spec`` (a bar chart or a layer holding one) on a log scale has a length.

    A log-scale bar runs from the scale's lower end to its value. Vega-Lite stacks bars by
    default (a colour field alone stacks them), and a stacked bar starts at 0, which a log
    scale cannot place: Chromium drew both charts empty ("Log scale domain includes zero").
    Unstacked, a bar still has no length when its value is the lower end itself."""
    layers = spec.get("layer", [spec])
    bars = [layer for layer in layers if layer["mark"]["type"] == "bar"]
    assert bars, spec
    logs = [(layer, enc) for layer in bars for enc in layer["encoding"].values()
            if enc.get("scale", {}).get("type") == "log"]
    assert logs, "no log scale"
    for _, enc in logs:
        assert "stack" in enc and enc["stack"] is None, f"bars stacked on a log scale: {enc}"
        lo, hi = enc["scale"]["domain"]
        assert 0 < lo < min(values) and hi >= max(values), (enc["scale"], min(values), max(values))


@pytest.mark.parametrize("levels", list(ca.LEVEL_PRESETS))
@pytest.mark.parametrize("size", [(480, 640), (97, 211)])
def test_level_chart_draws_every_level(levels, size):
    """Every preset and base size (a 1:1 layout with one level gives a single bar, an SSD one
    on RetinaNet strides an exact 100): every level's bar has a length on the log scale."""
    from components import anchors as ca_cache

    for scales in ca.SCALE_PRESETS:
        for ratios in ca.RATIO_PRESETS:
            for base in (8, 32, 256):
                anchors = ca.generate(*size, ca.preset_config(levels, scales, ratios, base))
                m = ca.match(ca.overlaps(np.zeros((0, 4), np.float32), anchors.boxes), high=0.7, low=0.3,
                             low_quality=True)
                rows = ca.level_table(anchors, m)
                spec = ca_cache.level_chart(rows)
                _log_bars_draw(spec, [r["anchors"] for r in rows])
                assert [v["anchors"] for v in spec["data"]["values"]] == [lv.count for lv in anchors.levels]


@pytest.mark.parametrize("boxes", [
    [[10, 20, 120, 200], [150, 30, 310, 90], [200, 150, 230, 170], [300, 5, 318, 12]],
    [[0, 0, 8, 8]],  # one tiny object: a few anchors touch it, one each in some bins
])
def test_iou_chart_draws_every_bin(boxes):
    from components import anchors as ca_cache

    anchors = ca.generate(240, 320, ca.preset_config("fpn", "octave", "frcnn", 32))
    m = ca.match(ca.overlaps(np.array(boxes, np.float32), anchors.boxes), high=0.7, low=0.3, low_quality=True)
    hist = [r for r in ca.iou_histogram(m) if r["anchors"] > 0]  # as the page does
    assert hist and min(r["anchors"] for r in hist) >= 1
    spec = ca_cache.iou_chart(hist, 0.3, 0.7)
    _log_bars_draw(spec, [r["anchors"] for r in hist])
    assert spec["layer"][0]["data"]["values"] == hist
    assert [r["t"] for r in spec["layer"][1]["data"]["values"]] == [0.3, 0.7]


# --- YOLO: which stride and grid point made each box ---------------------------------------


def _predict(yolo, rgb, imgsz, conf=0.25, iou=0.7):
    r = yolo.predict(np.ascontiguousarray(rgb[..., ::-1]), imgsz=imgsz, conf=conf, iou=iou, verbose=False)[0]
    return r.boxes.xyxy.numpy(), r.boxes.conf.numpy(), r.boxes.cls.numpy().astype(int)


def _check_attribution(yolo, rgb, imgsz):
    from ultralytics.utils import nms
    from ultralytics.utils.tal import make_anchors

    raw = ca.yolo_forward(yolo, rgb, imgsz=imgsz)
    found = ca.attribute(raw, conf=0.25, iou=0.7)
    assert raw.pred.shape[1] == sum(h * w for h, w in raw.grids)
    assert raw.strides == (8, 16, 32)
    # the head's own anchor points are ultralytics' make_anchors over the grids
    points, pstrides = make_anchors(torch.tensor(raw.grids), torch.tensor(raw.strides, dtype=torch.float32), 0.5)
    assert torch.allclose(torch.from_numpy(raw.points), points) and np.allclose(raw.point_strides, pstrides[:, 0])
    # same anchor indices as ultralytics' own NMS, and the same boxes as its predict (within a pixel)
    _, keepi = nms.non_max_suppression(torch.from_numpy(raw.pred)[None], 0.25, 0.7, max_det=300, return_idxs=True)
    assert sorted(d.anchor for d in found) == sorted(keepi[0].view(-1).tolist())
    boxes, scores, classes = _predict(yolo, rgb, imgsz)
    assert len(found) == len(boxes)
    order = np.argsort(-scores, kind="stable")
    mine = sorted(found, key=lambda d: -d.score)
    for d, j in zip(mine, order):
        assert d.label == classes[j] and np.abs(np.array(d.box) - boxes[j]).max() < 1.0
    for d in found:
        x1, y1, x2, y2 = d.box
        assert x1 <= d.point[0] <= x2 and y1 <= d.point[1] <= y2, d  # the point lies inside its box
        g = raw.grids[raw.strides.index(d.stride)]
        assert 0 <= d.col < g[1] and 0 <= d.row < g[0]
        gain = min(raw.input_hw[0] / raw.image_hw[0], raw.input_hw[1] / raw.image_hw[1])
        assert d.cell[2] - d.cell[0] == pytest.approx(d.stride / gain, abs=0.05)
    return raw, found


@pytest.mark.parametrize("seed", [900_000, 900_001, 900_002, 900_003])
def test_yolo_stride_attribution_on_shapes(trained_shapes_yolo, seed):
    from models.shapes_yolo import IMGSZ, detection_scene

    scene = detection_scene(seed)
    raw, found = _check_attribution(trained_shapes_yolo, scene.image, IMGSZ)
    assert raw.grids == ((24, 24), (12, 12), (6, 6)) and raw.input_hw == (192, 192)
    assert len(found) >= 1
    for d in found:  # every detection is one of the scene's shapes, found from a point inside it
        assert any(t[0] - 2 <= d.point[0] <= t[2] + 2 and t[1] - 2 <= d.point[1] <= t[3] + 2 for t in scene.boxes)


def test_yolo_stride_attribution_on_a_letterboxed_image(trained_shapes_yolo):
    """A non-square image is letterboxed to a rectangle (rows of the grids differ from columns)."""
    from models.shapes_yolo import IMGSZ, detection_scene

    rgb = np.ascontiguousarray(detection_scene(900_004).image[40:240])  # 200 x 320
    raw, found = _check_attribution(trained_shapes_yolo, rgb, IMGSZ)
    assert raw.input_hw == (128, 192) and raw.grids == ((16, 24), (8, 12), (4, 6))


@pytest.mark.real_weights
def test_yolo11n_cat_comes_from_a_grid_point_inside_it(coco_weights_dir):
    from core.images import load_sample
    from models import registry

    yolo = registry.load_ultralytics("yolo11n")
    image = load_sample("chelsea")
    raw, found = _check_attribution(yolo, image.work, 640)
    cats = [d for d in found if d.name == "cat"]
    assert cats, [d.name for d in found]
    cat = cats[0]
    assert cat.stride in (8, 16, 32)
    assert cat.box[0] <= cat.point[0] <= cat.box[2] and cat.box[1] <= cat.point[1] <= cat.box[3]


# --- the page -----------------------------------------------------------------------------


def _metric(at, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def _expected(scene_seed: int, high: float, low: float, low_quality: bool):
    """What the page should show, from the pure functions (the scene as components.models makes it)."""
    from core.imageio import fit_long_side
    from core.images import LabImage
    from models.shapes_yolo import detection_scene

    scene = detection_scene(scene_seed)
    image = LabImage.from_rgb(scene.image, name="scene", source="synthetic")
    work = fit_long_side(image.work, ca.MATCH_LONG_SIDE)
    anchors = ca.generate(work.shape[0], work.shape[1], ca.preset_config())
    scale = work.shape[1] / image.work.shape[1]
    return anchors, ca.match(ca.overlaps(scene.boxes * scale, anchors.boxes), high=high, low=low,
                             low_quality=low_quality)


def _counts(at):
    return tuple(_metric(at, f"{k} anchors") for k in ("Positive", "Ignored", "Negative"))


def test_page_offline_counts_equal_the_pure_functions(trained_shapes_yolo, monkeypatch, tmp_path):
    from tests.test_pages import _page

    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))  # no COCO weights: the shipped shapes YOLO
    at = _page(PAGE, scene="3")
    assert not at.exception, [e.value for e in at.exception]
    assert any("Offline demonstration" in i.value for i in at.info)
    assert any("yolo11n.pt" in w.value for w in at.warning)

    anchors, m = _expected(3, 0.7, 0.3, True)
    assert _metric(at, "Anchors") == len(anchors)
    base = at.slider(key="anc.base")  # drawn from its declaration; its default is core's AnchorConfig
    assert (base.label, base.value) == ("Base anchor size (px, first level)", ca.AnchorConfig.base_size)
    assert _counts(at) == (m.positives, m.ignored, m.negatives)

    at.slider(key="anc.high").set_value(0.5).run()
    anchors, m2 = _expected(3, 0.5, 0.3, True)
    assert not at.exception and _counts(at) == (m2.positives, m2.ignored, m2.negatives)
    assert _counts(at) != (m.positives, m.ignored, m.negatives)  # the slider really changed them
    at.checkbox(key="anc.lowq").uncheck().run()
    at.slider(key="anc.high").set_value(0.95).run()
    _, m3 = _expected(3, 0.95, 0.3, False)
    assert _counts(at) == (m3.positives, m3.ignored, m3.negatives)
    assert _metric(at, "Objects with no positive anchor") == int((m3.positives_per_object() == 0).sum())
    assert at.query_params["high"] in ("0.95", ["0.95"]) and at.query_params["lowq"] in ("0", ["0"])

    # the cell table is the chosen cell of the chosen level
    at.selectbox(key="anc.stride").set_value(32).run()
    at.slider(key="anc.x").set_value(10).run()
    table = at.dataframe[0].value
    assert set(table["stride"]) == {32} and len(table) == 3
    assert set(table["col"]) == {ca.locate(anchors, 3, 0.10, 0.5)[0]}

    # anchor-free part: every shapes-yolo detection names a stride of 8/16/32
    points = next(d.value for d in at.dataframe if "point x" in d.value.columns)
    assert len(points) >= 1 and set(points["stride"]) <= {8, 16, 32}

    # both log-scale charts are drawn from the pure functions' numbers, every bar with a length
    specs = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    levels = next(d.value for d in at.dataframe if "anchors per cell" in d.value.columns)
    _log_bars_draw(next(s for s in specs if "Anchors per level" in json.dumps(s["title"])), list(levels["anchors"]))
    iou = next(s for s in specs if "Anchors by best IoU" in json.dumps(s["title"]))
    _log_bars_draw(iou, [r["anchors"] for r in iou["layer"][0]["data"]["values"]])


def test_page_changing_the_layout_changes_the_anchor_count(trained_shapes_yolo, monkeypatch, tmp_path):
    from tests.test_pages import _page

    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))  # no COCO weights: the shipped shapes YOLO
    at = _page(PAGE, levels="retina", scales="octave", ratios="ssd", stride="4", low="0.9", high="0.4")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="anc.stride").value == 8  # stride 4 is not a RetinaNet level: nearest one
    assert any("above the positive one" in w.value for w in at.warning)
    config = ca.preset_config("retina", "octave", "ssd", 32)
    assert _metric(at, "Anchors") == len(ca.generate(320, 320, config))


@pytest.mark.real_weights
def test_page_with_real_weights_attributes_the_cat(coco_weights_dir):
    from tests.test_pages import _page

    at = _page(PAGE, img="chelsea")
    assert not at.exception, [e.value for e in at.exception]
    points = next(d.value for d in at.dataframe if "point x" in d.value.columns)
    cat = points[points["class"] == "cat"].iloc[0]
    assert cat["stride"] in (8, 16, 32)
    assert cat["x1"] <= cat["point x"] <= cat["x2"] and cat["y1"] <= cat["point y"] <= cat["y2"]
    objects = next(d.value for d in at.dataframe if "best IoU" in d.value.columns and "object" in d.value.columns)
    assert "cat" in set(objects["class"])
    assert _metric(at, "Positive anchors") >= 1
