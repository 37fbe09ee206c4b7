"""The one-stage instance segmenter: YOLO-seg masks as probabilities (core.yoloseg) and the
project's own shapes YOLO11-seg (models.shapes_yolo_seg).

Pure tests first (labels, the prototype mixture against ultralytics' own function), then the
trained model (session fixture below: trained once per machine into ./weights/trained) on
held-out scenes and against ultralytics' own ``Results.masks``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.instances import mask_iou
from core.shapes import SHAPE_CLASSES, make_scene
from models import shapes_yolo_seg
from models.shapes_yolo import detection_scene

ROOT = Path(__file__).resolve().parent.parent
SHARED_WEIGHTS = ROOT.parent / "shared" / "weights"
HELD_OUT = tuple(range(100_000, 100_040))  # never drawn for training (train < 50000 <= val < 100000)
# Mean best-match mask IoU (class must match) of the shipped file (1200 scenes x 60 epochs):
# 0.898 on HELD_OUT (recall at IoU 0.5: 0.97), 0.869 on EVAL_SEEDS (the manifest's figure;
# recall 0.94). The file is the same on every machine: the bars allow for rounding only.
MASK_IOU_BAR, MASK_RECALL_BAR = 0.85, 0.93
STORED_MASK_IOU_BAR = 0.85


@pytest.fixture(scope="session")
def trained():
    """The project's shapes YOLO11-seg, shipped in models/trained."""
    return shapes_yolo_seg.load_shapes_yolo_seg()


# --- labels ---------------------------------------------------------------------------------


def _rasterise(row: str, w: int, h: int) -> tuple[int, np.ndarray]:
    cls, *vals = row.split()
    pts = np.array([float(v) for v in vals]).reshape(-1, 2) * (w, h) - 0.5  # back to pixel centres
    canvas = np.zeros((h, w), np.uint8)
    cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1)
    return int(cls), canvas.astype(bool)


@pytest.mark.parametrize("seed", [0, 1, 7, 50_000, 123])
def test_segment_labels_redraw_the_exact_masks(seed):
    scene = detection_scene(seed)
    h, w = scene.image.shape[:2]
    rows = shapes_yolo_seg.segment_label_lines(scene)
    assert len(rows) == len(scene.labels)
    for row, label, mask in zip(rows, scene.labels, scene.masks):
        cls, drawn = _rasterise(row, w, h)
        values = np.array(row.split()[1:], float)
        assert cls == label and len(values) >= 6 and len(values) % 2 == 0
        assert values.min() >= 0 and values.max() <= 1
        # the largest outer contour: a shape split in two by a later one keeps its larger part
        assert mask_iou(mask[None], drawn[None])[0, 0] >= 0.75
        assert (drawn & mask).sum() >= 0.75 * mask.sum()


def test_polygon_of_a_square_is_its_pixel_centres():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True  # pixels 10..19 x 5..14
    poly = shapes_yolo_seg.instance_polygon(mask)
    assert poly.min(0).tolist() == [10.5, 5.5] and poly.max(0).tolist() == [19.5, 14.5]
    sliver = np.zeros((20, 30), bool)
    sliver[3, 4:9] = True  # a one-pixel line: its contour has 2 points, becomes a rectangle
    assert len(shapes_yolo_seg.instance_polygon(sliver)) == 4
    assert len(shapes_yolo_seg.instance_polygon(np.zeros((5, 5), bool))) == 0


def test_dataset_writes_segment_rows(tmp_path):
    from models.shapes_yolo import write_dataset

    yaml = write_dataset(tmp_path, n_train=2, n_val=1, label_lines=shapes_yolo_seg.segment_label_lines)
    assert "names:" in yaml.read_text()
    rows = (tmp_path / "labels" / "train" / "00001.txt").read_text().splitlines()
    assert rows == shapes_yolo_seg.segment_label_lines(detection_scene(1))


def test_model_yaml_is_yolo11n_seg_at_the_detector_width(tmp_path):
    from ultralytics.nn.tasks import SegmentationModel

    from models.shapes_yolo import MODEL_SCALE, write_model_yaml

    path = write_model_yaml(tmp_path, scale=MODEL_SCALE, base=shapes_yolo_seg.BASE_YAML)
    model = SegmentationModel(str(path), nc=len(SHAPE_CLASSES), verbose=False)
    full = SegmentationModel("yolo11n-seg.yaml", nc=len(SHAPE_CLASSES), verbose=False)
    assert type(model.model[-1]).__name__ == "Segment"
    assert [type(m).__name__ for m in model.model] == [type(m).__name__ for m in full.model]
    assert sum(p.numel() for p in model.parameters()) < 0.4 * sum(p.numel() for p in full.parameters())


# --- prototype mixture: the same as ultralytics, without the threshold ---------------------


@pytest.mark.parametrize("image_hw, proto_hw", [((320, 320), (48, 48)), ((240, 320), (40, 48)),
                                                 ((333, 500), (36, 48)), ((500, 333), (48, 36))])
def test_probabilities_threshold_to_ultralytics_native_masks(image_hw, proto_hw):
    from ultralytics.utils import ops

    gen = torch.Generator().manual_seed(sum(image_hw))
    protos = torch.randn(32, *proto_hw, generator=gen)
    coeffs = torch.randn(6, 32, generator=gen) * 0.3
    h, w = image_hw
    xy = torch.rand(6, 2, generator=gen) * torch.tensor([w, h]) * 0.6
    boxes = torch.cat([xy, xy + torch.rand(6, 2, generator=gen) * torch.tensor([w, h]) * 0.4 + 5], 1)
    from core.yoloseg import probability_masks

    probs, keep = probability_masks(protos, coeffs.clone(), boxes.clone(), image_hw)
    theirs = ops.process_mask_native(protos, coeffs.clone(), boxes.clone(), image_hw)
    assert probs.shape == theirs.shape == (6, h, w)
    assert torch.equal(probs > 0.5, theirs.bool())
    assert torch.equal(keep, theirs.flatten(1).amax(1) > 0)
    assert probs.min() >= 0 and probs.max() <= 1
    # not a binary mask: the soft values are there for the page's slider
    assert ((probs > 0.05) & (probs < 0.95)).sum() > 0
    x0, y0, x1, y1 = boxes[0].tolist()
    outside = torch.ones(h, w, dtype=torch.bool)
    outside[int(np.ceil(y0)):int(np.ceil(y1)), int(np.ceil(x0)):int(np.ceil(x1))] = False
    assert probs[0][outside].abs().max() == 0


def test_no_detections_gives_empty_masks():
    from core.yoloseg import probability_masks

    probs, keep = probability_masks(torch.randn(32, 48, 48), torch.zeros(0, 32), torch.zeros(0, 4), (100, 120))
    assert probs.shape == (0, 100, 120) and keep.shape == (0,)


# --- the trained shapes segmenter ---------------------------------------------------------


def _scores(yolo, seeds):
    from core.yoloseg import yolo_instances

    best = []
    for seed in seeds:
        scene = detection_scene(seed)
        found, _ = yolo_instances(yolo, scene.image, imgsz=shapes_yolo_seg.IMGSZ)
        kept = found.select(score=0.25, mask=0.5)
        if not len(kept):
            best.extend([0.0] * len(scene.labels))
            continue
        same = scene.labels[:, None] == kept.labels[None, :]
        best.extend((mask_iou(scene.masks, kept.binary) * same).max(axis=1))
    return np.asarray(best)


@pytest.mark.slow
def test_trained_masks_fall_on_the_shapes(trained):
    assert trained.task == "segment"
    assert [trained.names[i] for i in range(len(trained.names))] == list(SHAPE_CLASSES)
    best = _scores(trained, HELD_OUT)
    assert len(best) > 80
    # per true instance: best IoU with a predicted mask of the same class (0 if missed)
    assert best.mean() >= MASK_IOU_BAR, (best.mean(), np.median(best))
    assert (best >= 0.5).mean() >= MASK_RECALL_BAR


@pytest.mark.slow
def test_stored_metrics_describe_the_file(trained):
    meta = trained.ckpt["cvlab"]
    assert meta["format_version"] == shapes_yolo_seg.FORMAT_VERSION
    metrics = shapes_yolo_seg.stored_metrics(trained)
    assert metrics["imgsz"] == 192 and metrics["mask_iou"] >= STORED_MASK_IOU_BAR
    assert {"mAP50_mask", "mAP50_box", "train_seconds", "mask_recall", "mask_precision"} <= metrics.keys()
    assert shapes_yolo_seg.SHIPPED.path.name == "shapes_yolo_seg.pt"


def _images():
    """Held-out scenes, square and not (the letterbox pads those), one of them noisy."""
    a = detection_scene(100_100).image
    b = make_scene(100_101, size=(240, 320), n_shapes=(2, 4), min_size=0.2, max_size=0.4).image
    c = cv2.resize(make_scene(100_102, size=(320, 480), n_shapes=(2, 5), min_size=0.18, max_size=0.36).image,
                   (500, 333), interpolation=cv2.INTER_AREA)
    d = make_scene(100_103, size=(400, 300), n_shapes=(3, 5), min_size=0.2, max_size=0.36, noise=0.03).image
    return [a, b, c, d]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(4))
def test_wrapper_agrees_with_ultralytics_results(trained, index):
    from ultralytics.utils import ops

    from core.yoloseg import yolo_instances

    rgb = _images()[index]
    h, w = rgb.shape[:2]
    threads = torch.get_num_threads()
    mine, latency = yolo_instances(trained, rgb, imgsz=192, conf=0.05)
    assert torch.get_num_threads() == threads and latency > 0
    assert mine.masks.shape == (len(mine), h, w) and mine.masks.dtype == np.float32
    assert mine.masks.min() >= 0 and mine.masks.max() <= 1
    assert len(mine) >= 1

    bgr = np.ascontiguousarray(rgb[..., ::-1])
    for retina in (False, True):
        ref = trained.predict(bgr, imgsz=192, conf=0.05, iou=0.7, max_det=100, retina_masks=retina,
                              verbose=False)[0]
        torch.set_num_threads(threads)  # ultralytics' own predict lowers it process-wide
        np.testing.assert_allclose(ref.boxes.xyxy.numpy(), mine.boxes, atol=1e-3)
        np.testing.assert_allclose(ref.boxes.conf.numpy(), mine.scores, atol=1e-5)
        assert np.array_equal(ref.boxes.cls.numpy().astype(np.int64), mine.labels)
        data = ref.masks.data.float()
        if retina:  # the same resampling at full resolution: exact
            assert np.array_equal(data.numpy() > 0.5, mine.binary)
        else:  # thresholded at letterbox resolution, resized to the image as ultralytics does
            theirs = ops.scale_masks(data[None], (h, w))[0].numpy() > 0.5
            ious = np.diag(mask_iou(theirs, mine.binary))
            # Where the page shows masks (score >= 0.25, its default) they agree closely; the
            # faint small ones below (a 684-px mask of score 0.11 on the noisy image 3: IoU
            # 0.79) are held to the outline-band rule below only, which is the real invariant.
            shown = mine.scores >= 0.25
            assert ious[shown].mean() >= 0.95 and ious[shown].min() >= 0.9, (ious, mine.scores)
            # and they differ only along the outline, within 2 letterbox pixels of it
            r = int(np.ceil(2 * max(h, w) / 192))
            kernel = np.ones((2 * r + 1, 2 * r + 1), np.uint8)
            for a, b in zip(theirs, mine.binary.astype(np.uint8)):
                # the image's edge cuts a mask too: erode with zeros beyond it, so that a mask
                # touching the edge has an outline there (seen on image 3 with the shapes model
                # trained on a 2-core AMD EPYC: 20 pixels at x = 0..1 of a 0.06-score mask)
                inner = cv2.erode(b, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
                band = cv2.dilate(b, kernel).astype(bool) & ~inner.astype(bool)
                assert not ((a ^ b.astype(bool)) & ~band).any()


@pytest.mark.slow
def test_mask_threshold_applies_without_rerunning(trained):
    from core.yoloseg import yolo_instances

    found, _ = yolo_instances(trained, detection_scene(100_200).image, imgsz=192)
    loose, strict = found.select(score=0.25, mask=0.2), found.select(score=0.25, mask=0.8)
    assert len(loose) == len(strict) >= 1
    assert (loose.areas() >= strict.areas()).all() and (loose.areas() > strict.areas()).any()


def test_rejects_bad_input():
    from core.yoloseg import yolo_instances

    class NotSeg:
        task = "detect"

    with pytest.raises(ValueError):
        yolo_instances(NotSeg(), np.zeros((10, 10, 3), np.uint8), imgsz=64)
    with pytest.raises(ValueError):
        yolo_instances(NotSeg(), np.zeros((10, 10), np.uint8), imgsz=64)


# --- real weights -----------------------------------------------------------------------------


@pytest.mark.real_weights
def test_real_yolo_seg_weights_segment_the_astronaut():
    found = sorted(SHARED_WEIGHTS.glob("*seg*.pt")) if SHARED_WEIGHTS.is_dir() else []
    if not found:
        pytest.skip(f"no YOLO-seg weights in {SHARED_WEIGHTS} (../shared/weights has no *seg*.pt)")
    from skimage import data

    from core.yoloseg import yolo_instances
    from models.ultra import ultralytics

    yolo = ultralytics().YOLO(str(found[0]), task="segment")
    rgb = data.astronaut()
    instances, _ = yolo_instances(yolo, rgb, imgsz=640)
    kept = instances.select(score=0.5)
    assert "person" in kept.names
    person = kept.binary[kept.names.index("person")]
    assert person.mean() > 0.1  # the astronaut fills a good part of the photo
