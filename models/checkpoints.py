"""The on-disk cache of the project's own small torch models (shapes CNN, FCN, Mask R-CNN).

A checkpoint is a plain dict, loaded with ``torch.load(weights_only=True)``:
``header`` (format version, classes, input size… whatever decides that a file still fits
the code), ``state_dict`` and ``metrics`` (held-out scores measured when it was trained).
A file that is missing, unreadable, foreign or whose header differs is trained again —
once, even when several sessions ask at the same moment. (The shapes YOLOs are
Ultralytics checkpoints and have their own loader in ``models/shapes_yolo.py``.)
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from models.registry import atomic_torch_save, get_spec

Progress = Callable[[float, str], None]


class TrainedCache:
    """``load_or_train()`` for one registered model: ``build()`` makes the untrained network,
    ``header`` is what a valid file must carry (extra keys may ride along in ``extra``)."""

    def __init__(self, name: str, *, build: Callable[[], object], header: dict, extra: dict | None = None):
        self.name, self.build, self.header, self.extra = name, build, dict(header), dict(extra or {})
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return get_spec(self.name).path

    def checkpoint(self, model, metrics: dict) -> dict:
        return {**self.header, **self.extra, "state_dict": model.state_dict(), "metrics": metrics}

    def save(self, model, metrics: dict, path: Path | None = None) -> None:
        atomic_torch_save(self.checkpoint(model, metrics), path or self.path)

    def load(self, path: Path | None = None):
        """``(eval model, checkpoint)``, or None if the file is absent, unreadable or outdated."""
        import torch

        path = path or self.path
        if not path.is_file():
            return None
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            if any(ckpt.get(k) != v for k, v in self.header.items()):
                return None
            model = self.build()
            model.load_state_dict(ckpt["state_dict"])
        except Exception:  # a corrupt or foreign file is simply trained again
            return None
        return model.eval(), ckpt

    def load_or_train(self, train: Callable[..., tuple[object, dict]], progress: Progress | None = None):
        """The cached model (eval mode); ``train(progress=)`` -> (model, metrics) runs if needed."""
        with self._lock:
            loaded = self.load()
            if loaded is not None:
                return loaded[0]
            model, metrics = train(progress=progress)
            self.save(model, metrics)
            return model.eval()

    def metrics(self) -> dict | None:
        """Metrics stored with the cached model (None if there is no valid file)."""
        loaded = self.load()
        return None if loaded is None else dict(loaded[1]["metrics"])
