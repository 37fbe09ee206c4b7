"""The active image of a session and the sample gallery.

A :class:`LabImage` is what every page works on: the decoded picture at display size
(long side <= ``DISPLAY_LONG_SIDE``) and a working copy for computation (long side
<= ``WORK_LONG_SIDE``), plus a digest that keys every per-image cache.

Samples are real photos shipped inside scikit-image's package folder (no download), read
with Pillow (``skimage.data``'s own loaders import SciPy, a quarter of a second that Home
would pay), plus one synthetic shapes scene from the project's own generator.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.imageio import (
    DISPLAY_LONG_SIDE,
    WORK_LONG_SIDE,
    decode_image,
    fit_long_side,
    image_digest,
)

# name -> (title, file in scikit-image's data folder); None means the synthetic shapes scene.
# Each file is what the skimage.data function of the same name returns (tested).
SAMPLES: dict[str, tuple[str, str | None]] = {
    "astronaut": ("Astronaut (portrait, NASA)", "astronaut.png"),
    "coffee": ("Coffee cup", "coffee.png"),
    "chelsea": ("Chelsea the cat", "chelsea.png"),
    "rocket": ("Rocket on the launch pad", "rocket.jpg"),
    "hubble_deep_field": ("Hubble deep field", "hubble_deep_field.jpg"),
    "immunohistochemistry": ("Immunohistochemistry (microscopy)", "ihc.png"),
    "retina": ("Retina (fundus photo)", "retina.jpg"),
    "camera": ("Cameraman (grayscale)", "camera.png"),
    "coins": ("Coins (grayscale)", "coins.png"),
    "text": ("Printed text (grayscale)", "text.png"),
    "page": ("Scanned book page (grayscale text)", "page.png"),
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


def sample_path(file: str) -> Path:
    """Where scikit-image keeps one of its bundled sample files."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scikit-image is not installed; the sample gallery needs it")
    return Path(spec.submodule_search_locations[0]) / "data" / file


def load_sample(name: str) -> LabImage:
    """A gallery image by key; raises KeyError for an unknown key."""
    title, file = SAMPLES[name]
    if file is None:
        from core.shapes import make_scene

        rgb = make_scene(SHAPES_SAMPLE_SEED, size=480).image
    else:
        from PIL import Image

        with Image.open(sample_path(file)) as im:
            rgb = np.asarray(im.convert("RGB"))
    return LabImage.from_rgb(rgb, name=name, source="sample")


def from_bytes(data: bytes, *, name: str, source: str = "upload") -> LabImage:
    """Decode user bytes into a LabImage; raises core.imageio.ImageDecodeError."""
    decoded = decode_image(data)
    return LabImage.from_rgb(
        decoded.rgb, name=name, source=source, notes=decoded.notes, original_size=decoded.original_size
    )
