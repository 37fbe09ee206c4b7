"""Pooling (core/pooling.py, pages/21_Pooling.py): output sizes against the formula, a
hand-computed example, translation behaviour, and RoI pooling / RoIAlign against hand-written
references built from their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import pooling as pl

PAGE = "pages/21_Pooling.py"


@pytest.mark.parametrize("h,k,s,p", [(32, 2, 2, 0), (33, 2, 2, 0), (32, 3, 1, 1), (32, 3, 2, 1), (7, 7, 1, 0),
                                     (224, 3, 2, 1), (10, 4, 3, 2), (5, 1, 1, 0), (64, 5, 4, 2)])
@pytest.mark.parametrize("kind", pl.KINDS)
def test_output_size_is_the_formula(h, k, s, p, kind):
    x = torch.zeros(1, 1, h, h + 3)
    y = pl.pool(x, kind, k, s, p)
    assert y.shape[-2:] == (pl.output_size(h, k, s, p), pl.output_size(h + 3, k, s, p))
    assert pl.output_size(h, k, s, p) == (h + 2 * p - k) // s + 1


def test_output_size_rejects_impossible_settings():
    for args in [(4, 5, 1, 0), (8, 2, 0, 0), (8, 2, 1, 2)]:
        with pytest.raises(ValueError):
            pl.output_size(*args)


def test_small_example_by_hand():
    x = torch.tensor([[1., 2., 5., 6.], [3., 4., 7., 8.], [0., 0., 1., 1.], [0., 9., 1., 1.]])[None, None]
    assert pl.pool(x, "max", 2, 2).squeeze().tolist() == [[4., 8.], [9., 1.]]
    assert pl.pool(x, "avg", 2, 2).squeeze().tolist() == [[2.5, 6.5], [2.25, 1.]]
    assert pl.pool(x, "max", 3, 1).squeeze().tolist() == [[7., 8.], [9., 9.]]
    assert pl.global_pool(x, "max").item() == 9.0
    assert pl.global_pool(x, "avg").item() == pytest.approx(49 / 16)
    # adaptive 4 -> 3: bins [0,2), [1,3), [2,4) on each axis
    assert pl.adaptive_bins(4, 3) == [(0, 2), (1, 3), (2, 4)]
    assert pl.adaptive_pool(x, "max", 3).squeeze().tolist() == [[4., 7., 8.], [4., 7., 8.], [9., 9., 1.]]


def _astronaut_gray():
    from skimage import data

    return pl.to_tensor(np.ascontiguousarray(data.astronaut()[::4, ::4]), gray=True)


def test_global_max_is_exactly_shift_invariant_and_no_pooling_is_not():
    x = _astronaut_gray()
    for k in (1, 3, 17):
        xs = pl.shift(x, k)
        assert torch.equal(pl.global_pool(xs, "max"), pl.global_pool(x, "max"))
        assert not torch.equal(xs, x)
    rows = pl.translation_curve(x, 3)
    at = {(r["shift_px"], r["representation"]): r["cosine"] for r in rows}
    assert at[(3, "global max")] == pytest.approx(1.0, abs=1e-12)
    assert at[(1, "no pooling")] < 0.95


def test_max_pooling_changes_less_than_the_raw_map_under_a_one_pixel_shift():
    x = _astronaut_gray()
    rows = pl.translation_curve(x, 1)
    at = {(r["shift_px"], r["representation"]): r for r in rows}
    assert at[(1, "max pool")]["cosine"] > at[(1, "no pooling")]["cosine"] + 0.02
    assert at[(1, "max pool")]["relative_change"] < at[(1, "no pooling")]["relative_change"]


@pytest.mark.parametrize("box,scale", [((3, 2, 15, 17), 1.0), ((2.3, 1.6, 13.7, 18.2), 1.0),
                                       ((5.0, 4.0, 30.0, 33.0), 0.5), ((7.4, 3.3, 41.9, 29.6), 0.25)])
def test_roi_pool_is_the_max_over_the_quantised_bins(box, scale):
    f = np.random.default_rng(0).random((3, 20, 24)).astype(np.float32)
    ours = pl.roi_pool_by_hand(f, box, 5, scale)
    theirs = pl.roi_pool(torch.from_numpy(f)[None], box, 5, scale).numpy()
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("box,scale", [((4, 2, 18, 16), 1.0), ((2.3, 1.6, 13.7, 18.2), 1.0), ((7.4, 3.3, 41.9, 29.6), 0.25)])
def test_roi_align_equals_its_definition(box, scale, aligned):
    f = np.random.default_rng(1).random((2, 20, 24))
    ours = pl.roi_align_by_hand(f, box, 7, scale, sampling_ratio=2, aligned=aligned)
    theirs = pl.roi_align(torch.from_numpy(f)[None], box, 7, scale, 2, aligned).numpy()
    assert np.allclose(ours, theirs, atol=1e-12)


def test_roi_align_on_an_integer_box_with_one_sample_reads_pixel_centres():
    # box 0..14 (aligned: pixel centres at +0.5), 7 bins of 2 px, one sample per bin at the bin
    # centre = the corner shared by four pixels -> the mean of that 2x2 block = avg pooling.
    f = np.random.default_rng(2).random((1, 14, 14))
    ours = pl.roi_align(torch.from_numpy(f)[None], (0, 0, 14, 14), 7, 1.0, 1, True)
    avg = pl.pool(torch.from_numpy(f)[None], "avg", 2, 2)[0]
    assert torch.allclose(ours, avg, atol=1e-12)


def test_page_renders_and_shows_the_formula_and_roi():
    from tests.test_pages import _page

    at = _page(PAGE, k="3", s="2", p="1")
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)
    assert "floor(" in text and "RoI" in text
    # the formula line the page shows agrees with the tensor it pooled
    assert "= tensor size" in text
