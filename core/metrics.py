"""Image-comparison numbers shared by several pages: MSE and PSNR (numpy only).

One implementation, so the Noise, Missing data and Adversarial pages cannot disagree; a test
holds it equal to ``skimage.metrics.peak_signal_noise_ratio`` (not called here: importing
scikit-image costs a page's cold start more than this arithmetic).
"""

from __future__ import annotations

import math

import numpy as np


def mse(a: np.ndarray, b: np.ndarray, *, where: np.ndarray | None = None) -> float:
    """Mean squared difference (float64) over every value, or over the pixels where ``where``
    is True (an (H, W) mask selects all channels of those pixels); ``nan`` if it selects none."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if where is not None:
        where = np.asarray(where, dtype=bool)
        if not where.any():
            return float("nan")
        a, b = a[where], b[where]
    diff = a - b
    return float(np.mean(diff * diff))


def psnr_from_mse(err: float, data_range: float = 255.0) -> float:
    """10 log10(data_range² / MSE) dB; ``inf`` for MSE 0, ``nan`` for an undefined MSE."""
    if math.isnan(err):
        return float("nan")
    return math.inf if err == 0 else 10.0 * math.log10(data_range * data_range / err)


def psnr(a: np.ndarray, b: np.ndarray, *, where: np.ndarray | None = None, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB between two images of one shape (uint8: ``data_range``
    255), over every pixel and channel or only where ``where`` is True. ``inf`` when they are
    equal there, ``nan`` when ``where`` selects nothing. Symmetric in ``a`` and ``b``; equal to
    ``skimage.metrics.peak_signal_noise_ratio(a, b, data_range=data_range)``."""
    return psnr_from_mse(mse(a, b, where=where), data_range)
