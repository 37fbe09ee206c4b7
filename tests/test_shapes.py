"""core.shapes: the synthetic data are deterministic and their annotations are exact."""

from __future__ import annotations

import numpy as np
import pytest

from core.shapes import (
    SHAPE_CLASSES,
    Scene,
    make_classification_set,
    make_multilabel_set,
    make_scene,
)

C = len(SHAPE_CLASSES)

SCENE_CASES = [
    pytest.param(dict(), id="defaults"),
    pytest.param(dict(size=(200, 300), background="plain"), id="plain-rect"),
    pytest.param(dict(size=256, background="gradient", n_shapes=(4, 8)), id="gradient-crowded"),
    pytest.param(dict(size=128, background="textured", noise=0.05), id="textured-noisy"),
    pytest.param(dict(allow_overlap=False, n_shapes=(3, 6)), id="no-overlap"),
    pytest.param(dict(classes=[2, 5], class_weights=[1, 3]), id="two-classes"),
]


def scenes(kwargs: dict, n: int = 12) -> list[Scene]:
    return [make_scene(seed, **kwargs) for seed in range(n)]


def bbox_of(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)


def test_shape_classes_order_is_fixed():
    assert SHAPE_CLASSES == ("circle", "square", "triangle", "star", "hexagon", "cross")


@pytest.mark.parametrize("kwargs", SCENE_CASES)
def test_scene_arrays_have_the_documented_types_and_shapes(kwargs):
    for s in scenes(kwargs):
        h, w = (kwargs.get("size", 320),) * 2 if isinstance(kwargs.get("size", 320), int) else kwargs["size"]
        n = len(s.labels)
        assert s.image.shape == (h, w, 3) and s.image.dtype == np.uint8
        assert s.boxes.shape == (n, 4) and s.boxes.dtype == np.float32
        assert s.labels.shape == (n,) and s.labels.dtype == np.int64
        assert s.masks.shape == (n, h, w) and s.masks.dtype == bool
        assert 1 <= n <= kwargs.get("n_shapes", (1, 6))[1]


@pytest.mark.parametrize("kwargs", SCENE_CASES)
def test_same_seed_gives_identical_bytes_and_other_seeds_differ(kwargs):
    a, b, c = make_scene(7, **kwargs), make_scene(7, **kwargs), make_scene(8, **kwargs)
    for field in ("image", "boxes", "labels", "masks"):
        assert getattr(a, field).tobytes() == getattr(b, field).tobytes()
    assert a.image.tobytes() != c.image.tobytes()


@pytest.mark.parametrize("kwargs", SCENE_CASES)
def test_boxes_are_tight_around_non_overlapping_masks(kwargs):
    for s in scenes(kwargs):
        assert np.all(s.masks.sum(axis=0) <= 1), "a pixel belongs to two instances"
        for box, mask in zip(s.boxes, s.masks, strict=True):
            assert mask.any()
            np.testing.assert_allclose(box, bbox_of(mask), atol=1)


@pytest.mark.parametrize("kwargs", SCENE_CASES)
def test_labels_in_range_and_multi_hot_matches_them(kwargs):
    allowed = set(kwargs.get("classes", range(C)))
    for s in scenes(kwargs):
        assert set(s.labels.tolist()) <= allowed
        expected = np.zeros(C, np.float32)
        expected[s.labels] = 1
        np.testing.assert_array_equal(s.multi_hot, expected)
        assert s.multi_hot.dtype == np.float32
        assert s.class_names == [SHAPE_CLASSES[i] for i in s.labels]


def test_no_overlap_means_masks_do_not_even_touch_each_other():
    for s in scenes(dict(allow_overlap=False, n_shapes=(3, 6))):
        union = s.masks.sum(axis=0)
        assert union.max() <= 1


@pytest.mark.parametrize("min_visible", [0.3, 0.6])
def test_every_instance_keeps_the_minimum_visible_fraction(monkeypatch, min_visible):
    """Spy on the painter to get each shape's full (unoccluded) mask, then check what is
    left of it in the final scene: never less than ``min_visible``, never a stray pixel."""
    import core.shapes as shapes

    painted: list[np.ndarray] = []
    original = shapes._SceneBuilder.add

    def spy(self, cls, mask):
        painted.append(mask.copy())
        return original(self, cls, mask)

    monkeypatch.setattr(shapes._SceneBuilder, "add", spy)
    occluded = 0
    for seed in range(25):
        painted.clear()
        s = make_scene(seed, size=160, n_shapes=(5, 8), min_visible=min_visible)
        assert len(painted) == len(s.labels)
        for full, visible in zip(painted, s.masks, strict=True):
            assert not (visible & ~full).any()
            frac = visible.sum() / full.sum()
            assert frac >= min_visible
            occluded += frac < 1
    assert occluded > 10  # the scenes really do overlap


def test_shapes_contrast_with_their_surroundings():
    """Mean colour inside a shape differs clearly from the ring of pixels just outside it."""
    import cv2

    diffs = []
    for s in scenes(dict(background="textured"), n=20):
        for mask in s.masks:
            m8 = mask.astype(np.uint8)
            ring = cv2.dilate(m8, np.ones((5, 5), np.uint8)).astype(bool) & ~mask
            others = s.masks.any(axis=0) & ~mask
            ring &= ~others  # compare against background only
            if ring.sum() < 20:
                continue
            inside = s.image[mask].astype(float).mean(axis=0)
            outside = s.image[ring].astype(float).mean(axis=0)
            diffs.append(np.linalg.norm(inside - outside))
    assert len(diffs) > 30
    assert np.median(diffs) > 80 and np.mean(np.array(diffs) > 40) > 0.95


def test_classification_set_is_deterministic_and_labelled():
    x1, y1 = make_classification_set(50, seed=3)
    x2, y2 = make_classification_set(50, seed=3)
    x3, _ = make_classification_set(50, seed=4)
    assert x1.shape == (50, 64, 64, 3) and x1.dtype == np.uint8
    assert y1.shape == (50,) and y1.dtype == np.int64
    assert x1.tobytes() == x2.tobytes() and np.array_equal(y1, y2)
    assert x1.tobytes() != x3.tobytes()
    assert set(y1.tolist()) <= set(range(C)) and len(set(y1.tolist())) >= 4
    # image i depends only on (seed, i): a longer set starts with the shorter one
    x4, y4 = make_classification_set(80, seed=3)
    assert x4[:50].tobytes() == x1.tobytes() and np.array_equal(y4[:50], y1)


def test_classification_shape_is_roughly_centred_and_inside_the_image():
    """The shape's pixels (those far from the local background) sit around the centre."""
    x, _ = make_classification_set(40, seed=0, size=64, background="plain")
    for img in x:
        bg = img[0, 0].astype(int)
        fg = np.abs(img.astype(int) - bg).sum(axis=2) > 30
        ys, xs = np.nonzero(fg)
        assert fg.sum() > 200
        assert abs(xs.mean() - 32) < 14 and abs(ys.mean() - 32) < 14


@pytest.mark.parametrize(
    "weights, expected",
    [
        ([1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]),
        ([0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1]),
        ([6, 3, 1, 0, 0, 0], [0.6, 0.3, 0.1, 0, 0, 0]),
        ([1, 1, 1, 1, 1, 1], [1 / 6] * 6),
    ],
)
def test_class_weights_give_the_asked_proportions(weights, expected):
    n = 1200
    _, y = make_classification_set(n, seed=1, size=32, class_weights=weights)
    freq = np.bincount(y, minlength=C) / n
    np.testing.assert_allclose(freq, expected, atol=0.04)


def test_class_weights_apply_to_scenes_too():
    for seed in range(10):
        assert set(make_scene(seed, class_weights=[1, 0, 0, 0, 0, 0]).labels.tolist()) == {0}


def test_classes_subset_restricts_labels():
    _, y = make_classification_set(200, seed=0, size=32, classes=[1, 4])
    assert set(y.tolist()) == {1, 4}


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(class_weights=[1, 2]),  # wrong length
        dict(class_weights=[0, 0, 0, 0, 0, 0]),  # all zero
        dict(class_weights=[-1, 1, 1, 1, 1, 1]),  # negative
        dict(classes=[0, 9]),  # unknown class id
        dict(background="bricks"),
    ],
)
def test_bad_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        make_scene(0, **kwargs)


def test_multilabel_set_targets_match_the_drawn_shapes():
    x, t = make_multilabel_set(40, seed=2)
    assert x.shape == (40, 96, 96, 3) and x.dtype == np.uint8
    assert t.shape == (40, C) and t.dtype == np.float32
    assert set(np.unique(t).tolist()) <= {0.0, 1.0}
    assert t.sum(axis=1).min() >= 1 and t.sum(axis=1).max() > 1  # several shapes per image
    x2, t2 = make_multilabel_set(40, seed=2)
    assert x.tobytes() == x2.tobytes() and np.array_equal(t, t2)
