"""The active image of a session and the sample gallery.

A :class:`LabImage` is what every page works on: the decoded picture at display size
(long side <= ``DISPLAY_LONG_SIDE``) and a working copy for computation (long side
<= ``WORK_LONG_SIDE``), plus a digest that keys every per-image cache.

Samples are real photos shipped inside scikit-image (no download), plus one synthetic
shapes scene from the project's own generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.imageio import (
    DISPLAY_LONG_SIDE,
    WORK_LONG_SIDE,
    decode_image,
    fit_long_side,
    image_digest,
)

# name -> (title, skimage.data function); None means the synthetic shapes scene
SAMPLES: dict[str, tuple[str, str | None]] = {
    "astronaut": ("Astronaut (portrait, NASA)", "astronaut"),
    "coffee": ("Coffee cup", "coffee"),
    "chelsea": ("Chelsea the cat", "chelsea"),
    "rocket": ("Rocket on the launch pad", "rocket"),
    "hubble_deep_field": ("Hubble deep field", "hubble_deep_field"),
    "immunohistochemistry": ("Immunohistochemistry (microscopy)", "immunohistochemistry"),
    "retina": ("Retina (fundus photo)", "retina"),
    "camera": ("Cameraman (grayscale)", "camera"),
    "coins": ("Coins (grayscale)", "coins"),
    "text": ("Printed text (grayscale)", "text"),
    "shapes": ("Synthetic shapes scene (offline data)", None),
}
DEFAULT_SAMPLE = "astronaut"
SHAPES_SAMPLE_SEED = 7


@dataclass(frozen=True, eq=False)
class LabImage:
    name: str  # sample key or uploaded file name
    source: str  # "sample" | "upload" | "camera"
    display: np.ndarray  # RGB uint8, long side <= DISPLAY_LONG_SIDE
    work: np.ndarray  # RGB uint8, long side <= WORK_LONG_SIDE (what models see)
    digest: str  # cache key of ``work``
    original_size: tuple[int, int]  # (width, height) as decoded
    notes: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return SAMPLES[self.name][0] if self.source == "sample" else self.name

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, *, name: str, source: str, notes=(), original_size=None):
        display = fit_long_side(rgb, DISPLAY_LONG_SIDE)
        if display is rgb:  # never freeze the caller's array
            display = rgb.copy()
        work = fit_long_side(display, WORK_LONG_SIDE)
        size = original_size or (rgb.shape[1], rgb.shape[0])
        for array in (display, work):  # shared between sessions via caches: read-only
            array.flags.writeable = False
        if size != (work.shape[1], work.shape[0]):
            notes = (*notes, f"Computed at {work.shape[1]}×{work.shape[0]} (original {size[0]}×{size[1]}).")
        return cls(name, source, display, work, image_digest(work), size, tuple(notes))


def load_sample(name: str) -> LabImage:
    """A gallery image by key; raises KeyError for an unknown key."""
    title, fn = SAMPLES[name]
    if fn is None:
        from core.shapes import make_scene

        rgb = make_scene(SHAPES_SAMPLE_SEED, size=480).image
    else:
        from skimage import data

        rgb = getattr(data, fn)()
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        rgb = np.ascontiguousarray(rgb[..., :3].astype(np.uint8))
    return LabImage.from_rgb(rgb, name=name, source="sample")


def from_bytes(data: bytes, *, name: str, source: str = "upload") -> LabImage:
    """Decode user bytes into a LabImage; raises core.imageio.ImageDecodeError."""
    decoded = decode_image(data)
    return LabImage.from_rgb(
        decoded.rgb, name=name, source=source, notes=decoded.notes, original_size=decoded.original_size
    )
