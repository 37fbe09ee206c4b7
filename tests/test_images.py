"""The sample gallery loads offline; active images are bounded and read-only."""

import numpy as np
import pytest

from core.imageio import WORK_LONG_SIDE, encode_png
from core.images import SAMPLES, LabImage, from_bytes, load_sample


@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_loads_offline(name):
    img = load_sample(name)
    assert img.work.dtype == np.uint8 and img.work.ndim == 3 and img.work.shape[2] == 3
    assert max(img.work.shape[:2]) <= WORK_LONG_SIDE
    assert not img.work.flags.writeable and not img.display.flags.writeable


@pytest.mark.parametrize("name", [n for n, (_, file) in SAMPLES.items() if file])
def test_samples_are_exactly_what_skimage_data_returns(name):
    """Read with Pillow from scikit-image's folder, pixel for pixel the skimage.data image."""
    from skimage import data

    expected = getattr(data, name)()
    if expected.ndim == 2:
        expected = np.repeat(expected[..., None], 3, axis=2)
    assert np.array_equal(load_sample(name).display, expected[..., :3])


def test_big_upload_is_computed_at_working_size_and_noted():
    rgb = np.zeros((3000, 4000, 3), np.uint8)
    img = from_bytes(encode_png(rgb), name="big.png")
    assert img.work.shape == (960, 1280, 3) and img.original_size == (4000, 3000)
    assert any("1280×960" in n for n in img.notes)


def test_digest_follows_content_not_name():
    rgb = np.full((64, 64, 3), 7, np.uint8)
    a = LabImage.from_rgb(rgb, name="a", source="upload")
    b = LabImage.from_rgb(rgb.copy(), name="b", source="upload")
    c = LabImage.from_rgb(rgb + 1, name="a", source="upload")
    assert a.digest == b.digest != c.digest
    assert rgb.flags.writeable  # the caller's array is never frozen


def test_ultralytics_import_does_not_hijack_the_decoder():
    """Ultralytics patches PIL.Image.open to pip-install a HEIF plugin on unknown files;
    models.ultra undoes that, so a bad upload stays a clear message and installs nothing."""
    from PIL import Image

    from core.imageio import ImageDecodeError, decode_image
    from models.ultra import ultralytics

    ultralytics()
    from ultralytics.utils import patches

    assert Image.open is not patches.image_open
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image(np.random.default_rng(0).bytes(4096))
