"""The one way this project imports Ultralytics.

Importing ``ultralytics`` has side effects that a public server must not have:

* it monkey-patches ``PIL.Image.open`` so that, the first time Pillow cannot identify a
  file, it pip-installs ``pi-heif`` at run time — on a lab server a user's corrupt
  upload would start an install. The patch is undone here (users' images go through
  ``core.imageio`` anyway; Ultralytics only ever receives numpy arrays from us);
* it may auto-install missing requirements, contact its hub and send analytics:
  ``YOLO_AUTOINSTALL=false`` and ``YOLO_OFFLINE=1`` turn that off, and settings sync is off.
  Weight downloads are the registry's job, not Ultralytics'.
"""

from __future__ import annotations

import os


def ultralytics():
    """The ``ultralytics`` module, imported with its side effects switched off."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    import ultralytics
    from PIL import Image
    from ultralytics.utils import SETTINGS, patches

    if Image.open is patches.image_open:
        Image.open = patches._image_open
    if SETTINGS.get("sync", False):
        SETTINGS.update(sync=False)
    return ultralytics
