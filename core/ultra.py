"""The one way this project imports Ultralytics.

Importing ``ultralytics`` has side effects that a public server must not have:

* it monkey-patches ``PIL.Image.open`` so that, the first time Pillow cannot identify a
  file, it pip-installs ``pi-heif`` at run time — on a lab server a user's corrupt
  upload would start an install. The patch is undone here (users' images go through
  ``core.imageio`` anyway; Ultralytics only ever receives numpy arrays from us);
* it may auto-install missing requirements, contact its hub and send analytics:
  ``YOLO_AUTOINSTALL=false`` and ``YOLO_OFFLINE=1`` turn that off, and settings sync is off.
  Weight downloads are the registry's job, not Ultralytics'.
* it sets ``OMP_NUM_THREADS=1`` when unset, so that torch, if Ultralytics is the first to
  import it, runs every model on one core. Here the variable is set to this process's
  cores first (a value set by the user is kept).

It lives in core (core's trackers and YOLO-seg helpers need it; core imports nothing from
models/); ``models.ultra`` re-exports it.
"""

from __future__ import annotations

import os

from core.devices import cpu_threads


def ultralytics():
    """The ``ultralytics`` module, imported with its side effects switched off."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")
    os.environ.setdefault("OMP_NUM_THREADS", str(cpu_threads()))
    import ultralytics
    from PIL import Image
    from ultralytics.utils import SETTINGS, patches

    if Image.open is patches.image_open:
        Image.open = patches._image_open
    if SETTINGS.get("sync", False):
        SETTINGS.update(sync=False)
    return ultralytics
