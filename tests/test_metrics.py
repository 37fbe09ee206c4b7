"""core.metrics: the lab's one PSNR (Noise, Missing data and Adversarial pages), held equal to
scikit-image's ``peak_signal_noise_ratio``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

from core import adversarial, metrics, missing, noise


def _pair(seed: int, shape=(37, 53, 3), spread: int = 40):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-spread, spread + 1, shape), 0, 255).astype(np.uint8)
    return a, b


@pytest.mark.parametrize("seed,shape,spread", [(0, (37, 53, 3), 40), (1, (64, 64, 3), 3), (2, (20, 30), 120),
                                               (3, (8, 8, 3), 1)])
def test_psnr_and_mse_equal_scikit_image(seed, shape, spread):
    a, b = _pair(seed, shape, spread)
    assert metrics.mse(a, b) == pytest.approx(mean_squared_error(a, b), rel=1e-12)
    want = peak_signal_noise_ratio(a, b, data_range=255)
    assert metrics.psnr(a, b) == pytest.approx(want, rel=1e-12)
    assert metrics.psnr(b, a) == pytest.approx(want, rel=1e-12)


def test_psnr_on_floats_with_their_data_range():
    rng = np.random.default_rng(5)
    a = rng.random((16, 16, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    assert metrics.psnr(a, b, data_range=1.0) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0))


def test_masked_psnr_is_scikit_images_on_the_selected_pixels():
    a, b = _pair(7)
    where = np.random.default_rng(8).random(a.shape[:2]) < 0.3
    assert metrics.psnr(a, b, where=where) == pytest.approx(peak_signal_noise_ratio(a[where], b[where], data_range=255))
    assert math.isnan(metrics.psnr(a, b, where=np.zeros(a.shape[:2], bool)))
    assert metrics.psnr(a, a.copy()) == math.inf
    with pytest.raises(ValueError):
        metrics.psnr(a, b[:-1])


def test_every_page_uses_the_one_psnr():
    assert noise.psnr is metrics.psnr and missing.psnr is metrics.psnr
    a, b = _pair(9)
    want = peak_signal_noise_ratio(a, b, data_range=255)
    assert adversarial.size_of(a, b).psnr == pytest.approx(want, rel=1e-12)
    assert adversarial.size_of(a, a).psnr == math.inf
