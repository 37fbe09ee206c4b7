"""Thresholds, NMS and matching on hand-computed cases; the detector wrappers reproduce
their libraries' own outputs; the real COCO YOLO and the offline shapes YOLO find what
is really in the image."""

from __future__ import annotations

import numpy as np
import pytest

from core import detection as det
from core.annotate import BoxAnnotator

CATS = ("cat", "dog")
# A and B overlap with IoU 81/119 = 0.68; C sits on B but is another class; D is weak.
BOXES = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
SCORES = np.array([0.9, 0.8, 0.7, 0.3], np.float32)
LABELS = np.array([0, 0, 1, 0], np.int64)
CANDS = det.Detections(BOXES, SCORES, LABELS, CATS)


@pytest.mark.parametrize(
    "kwargs, before, kept",
    [
        (dict(conf=0.5, iou=0.5), [0, 1, 2], [0, 2]),  # B suppressed by A (0.68 > 0.5)
        (dict(conf=0.5, iou=0.7), [0, 1, 2], [0, 1, 2]),  # 0.68 < 0.7: B survives
        (dict(conf=0.2, iou=0.5), [0, 1, 2, 3], [0, 2, 3]),  # D passes the lower threshold
        (dict(conf=0.5, iou=0.5, class_agnostic=True), [0, 1, 2], [0]),  # C now suppressed too
        (dict(conf=0.5, iou=0.5, classes={1}), [2], [2]),  # class filter
        (dict(conf=0.9, iou=0.5), [], []),  # strict ">": a score equal to conf is dropped
        (dict(conf=0.5, iou=1.0), [0, 1, 2], [0, 1, 2]),  # IoU 1.0 = NMS off
        (dict(conf=0.2, iou=0.5, max_det=2), [0, 1, 2, 3], [0, 2]),
    ],
)
def test_select_hand_computed(kwargs, before, kept):
    sel = det.select(CANDS, **kwargs)
    np.testing.assert_array_equal(sel.before_nms.scores, SCORES[before])
    np.testing.assert_array_equal(sel.kept.scores, SCORES[kept])


def test_select_by_names_and_counts():
    sel = det.select_by_names(CANDS, conf=0.2, iou=0.5, names=["dog"])
    assert sel.kept.names() == ["dog"]
    counts = det.nms_counts(det.select(CANDS, conf=0.2, iou=0.5))
    assert counts == {"class": ["cat", "dog"], "before NMS": [3, 1], "kept": [2, 1]}


@pytest.mark.parametrize("conf, iou", [(-0.1, 0.5), (0.5, 1.5), (float("nan"), 0.5)])
def test_select_rejects_out_of_range(conf, iou):
    with pytest.raises(ValueError):
        det.select(CANDS, conf=conf, iou=iou)


def test_match_to_truth_hand_computed():
    truth_boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60], [100, 100, 110, 110]], np.float32)
    truth_labels = np.array([0, 1, 0])
    # A matches truth 0; B is a duplicate (truth 0 used) -> FP; C wrong place -> FP;
    # D overlaps truth 1 but the class differs -> FP. Truth 1 and 2 are missed.
    report = det.match_to_truth(CANDS, truth_boxes, truth_labels)
    assert (report.true_positives, report.false_positives, report.missed) == (1, 3, 2)
    assert report.recall == pytest.approx(1 / 3) and report.precision == pytest.approx(1 / 4)


BOX = [10, 10, 50, 50]


@pytest.mark.parametrize(
    "preds, scores, plabels, gts, glabels, tp",
    [
        ([BOX], [0.9], [1], [BOX], [1], 1),
        ([BOX], [0.9], [2], [BOX], [1], 0),  # wrong class
        ([BOX, BOX], [0.9, 0.8], [1, 1], [BOX], [1], 1),  # duplicate counts once
        ([[10, 10, 50, 90]], [0.9], [1], [BOX], [1], 1),  # IoU 1600/3200 = 0.5 counts (>=)
        ([[10, 10, 50, 95]], [0.9], [1], [BOX], [1], 0),  # IoU 1600/3400 < 0.5
        ([[12, 10, 52, 50], BOX], [0.5, 0.9], [1, 1], [BOX, [12, 10, 52, 50]], [1, 1], 2),
        ([], [], [], [BOX], [1], 0),
        ([BOX], [0.9], [1], [], [], 0),
    ],
)
def test_match_to_truth_table(preds, scores, plabels, gts, glabels, tp):
    arr = lambda v: np.asarray(v, np.float32).reshape(-1, 4)  # noqa: E731
    dets = det.Detections(arr(preds), np.asarray(scores, np.float32), np.asarray(plabels, np.int64), tuple("abc"))
    got = det.match_to_truth(dets, arr(gts), np.asarray(glabels, np.int64))
    assert got.true_positives == tp and got.false_positives == len(preds) - tp


def test_csv_has_one_row_per_box():
    text = det.to_csv(CANDS)
    lines = text.strip().splitlines()
    assert lines[0] == "class,score,x1,y1,x2,y2" and len(lines) == 5
    assert lines[1].startswith("cat,0.9,0.0,0.0,10.0,10.0")


def test_annotator_draws_on_a_copy():
    img = np.zeros((80, 80, 3), np.uint8)
    img.flags.writeable = False  # the app's images are read-only: annotate must copy
    out = BoxAnnotator(thickness=2, show_labels=False, show_scores=False).annotate(img, CANDS.subset([3]))
    assert out is not img and img.sum() == 0
    assert out[50, 55].any() and out[55, 55].sum() == 0  # edge drawn, inside untouched


def _tiny_faster_rcnn(num_classes: int):
    """A small untrained torchvision FasterRCNN (the docs' custom-backbone recipe):
    random but varied scores, fast on a CPU."""
    import torch
    from torch import nn
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.ops import MultiScaleRoIAlign

    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 16, 3, stride=4), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU())
    backbone.out_channels = 32
    return FasterRCNN(
        backbone,
        num_classes=num_classes,
        rpn_anchor_generator=AnchorGenerator(((32, 64, 128),), ((0.5, 1.0, 2.0),)),
        box_roi_pool=MultiScaleRoIAlign(["0"], output_size=7, sampling_ratio=2),
        min_size=320,
        max_size=320,
    ).eval()


def test_torchvision_wrapper_reproduces_the_models_own_nms():
    """Candidates (NMS off) + our select == what torchvision's detector returns itself."""
    import copy

    import torch

    from models.detectors import TorchvisionDetector

    native = _tiny_faster_rcnn(num_classes=5)  # untrained: plenty of boxes above 0.05
    wrapped = TorchvisionDetector(copy.deepcopy(native), name="t", title="t", categories=tuple("abcde"))
    rgb = (np.random.default_rng(0).random((240, 320, 3)) * 255).astype(np.uint8)
    with torch.inference_mode():
        ref = native([torch.from_numpy(rgb).permute(2, 0, 1).float() / 255])[0]
    cands = wrapped.candidates(rgb).detections
    assert len(cands) > len(ref["scores"]) > 0  # NMS really was off in the wrapper
    kept = det.select(cands, conf=native.roi_heads.score_thresh, iou=native.roi_heads.nms_thresh,
                      max_det=native.roi_heads.detections_per_img).kept
    np.testing.assert_allclose(kept.boxes, ref["boxes"].numpy(), atol=1e-4)
    np.testing.assert_allclose(kept.scores, ref["scores"].numpy(), atol=1e-6)
    np.testing.assert_array_equal(kept.labels, ref["labels"].numpy())


@pytest.mark.real_weights
@pytest.mark.parametrize("sample, expected", [("astronaut", "person"), ("chelsea", "cat"), ("coffee", "cup")])
def test_real_yolo_finds_the_object(coco_weights_dir, sample, expected):
    """With real COCO weights the page's pipeline finds what is in the photo, and its
    NMS reproduces ultralytics' own predict() exactly."""
    from skimage import data

    from models.detectors import load_detector

    rgb = getattr(data, sample)()
    detector = load_detector("yolo11n")
    cands = detector.candidates(rgb).detections
    kept = det.select(cands, conf=0.25, iou=0.7).kept
    assert kept.names()[0] == expected and kept.scores[0] > 0.5
    for conf, iou in [(0.25, 0.7), (0.1, 0.45), (0.5, 0.3)]:
        ours = det.select(cands, conf=conf, iou=iou).kept
        ref = detector.yolo.predict(np.ascontiguousarray(rgb[..., ::-1]), conf=conf, iou=iou, verbose=False)[0]
        np.testing.assert_allclose(np.sort(ours.scores), np.sort(ref.boxes.conf.numpy()), atol=1e-5)
        assert sorted(ours.names()) == sorted(ref.names[int(c)] for c in ref.boxes.cls)


@pytest.mark.slow
def test_offline_shapes_detector_finds_the_shapes(trained_shapes_yolo):
    """The offline fallback through the page's exact path: recall and precision >= 0.8
    on scenes it never saw in training."""
    from models.detectors import load_detector
    from models.registry import get_spec
    from models.shapes_yolo import IMGSZ, detection_scene

    detector = load_detector("shapes-yolo")
    assert detector.imgsz == IMGSZ == get_spec("shapes-yolo").input_size
    totals = np.zeros(3)
    for seed in range(100_000, 100_030):
        scene = detection_scene(seed)
        kept = det.select(detector.candidates(scene.image).detections, conf=0.25, iou=0.7).kept
        r = det.match_to_truth(kept, scene.boxes, scene.labels)
        totals += (r.true_positives, r.false_positives, r.missed)
    tp, fp, missed = totals
    assert tp / (tp + missed) >= 0.8 and tp / (tp + fp) >= 0.8, totals


@pytest.mark.slow
def test_ultralytics_predict_does_not_shrink_torch_threads(trained_shapes_yolo):
    """ultralytics' select_device sets torch threads to cores - 1 for the whole process;
    the wrapper restores them, or every other page would run on fewer cores."""
    import torch

    from models.detectors import load_detector

    before = torch.get_num_threads()
    load_detector("shapes-yolo").candidates(np.zeros((64, 64, 3), np.uint8))
    assert torch.get_num_threads() == before
