"""The models this project trains itself and ships in ``models/trained/``.

Seven small models (shapes classifier and its "other task" twin, shapes YOLO and YOLO-seg,
shapes Mask R-CNN, shapes FCN, OCR CRNN) are trained here from fixed seeds on data the
project draws itself, and their files are committed, so a fresh clone serves every page at
the first click without training or network. Each is declared once by a :class:`Shipped`:

* ``recipe``: the keyword arguments its trainer is called with (``python -m models.train``);
* ``train(progress=None, **recipe) -> (model, metrics)``: the trainer; ``metrics`` holds
  the held-out scores measured on the model as it will be saved;
* ``evaluate(model) -> dict``: the same held-out scores again (tests re-measure the file);
* ``fingerprint() -> str``: a digest of the first training samples the generator draws, so
  a changed generator is noticed;
* ``header``: what a file must carry to fit this code (format version, classes…).

``models/trained/manifest.json`` records, per model, the file's SHA-256 and size, the
recipe, the data fingerprint, the held-out metrics, the training time and where it was
built. Loading checks the file's SHA-256 against it (once per size and mtime), then reads
it with ``torch.load(weights_only=True)``: a plain dict of tensors and metadata, never a
pickled object. Nothing is trained when a file is missing or altered: the error says how
to restore or rebuild it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from models.registry import REPO_ROOT, WeightsUnavailable, atomic_torch_save, get_spec, sha256_of

Progress = Callable[[float, str], None]

SHIPPED_DIR = REPO_ROOT / "models" / "trained"
MANIFEST = SHIPPED_DIR / "manifest.json"

_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def manifest(path: Path | None = None) -> dict[str, dict]:
    """The manifest of the shipped files ({} when absent)."""
    path = path or MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def jsonable(value: Any) -> Any:
    """``value`` as JSON would give it back (tuples become lists, numpy scalars floats)."""
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


def fingerprint(*parts: Any) -> str:
    """A short digest of training samples that does not depend on the CPU's arithmetic:
    integer arrays (labels, boxes, masks) and strings are hashed exactly; uint8 images by
    their shape and per-channel means rounded to 0.1 (a resize that rounds one pixel
    differently on another CPU does not change it); floats rounded to 3 decimals."""
    import numpy as np

    digest = hashlib.sha256()

    def add(item: Any) -> None:
        if isinstance(item, (list, tuple)):
            digest.update(b"[")
            for sub in item:
                add(sub)
            digest.update(b"]")
        elif isinstance(item, np.ndarray) and item.dtype == np.uint8 and item.ndim >= 2:
            means = item.reshape(-1, item.shape[-1] if item.ndim == 3 else 1).mean(axis=0)
            digest.update(repr((item.shape, np.round(means, 1).tolist())).encode())
        elif isinstance(item, np.ndarray) and item.dtype.kind == "f":
            digest.update(repr((item.shape, np.round(item.astype(np.float64), 3).tolist())).encode())
        elif isinstance(item, np.ndarray):
            digest.update(repr((item.shape, item.astype(np.int64).tolist())).encode())
        else:
            digest.update(repr(item).encode())

    add(list(parts))
    return digest.hexdigest()[:16]


@dataclass(kw_only=True)
class Shipped:
    """One shipped model: how it is trained, saved, loaded and judged (see the module doc)."""

    name: str  # its name in models.registry
    recipe: dict
    train: Callable[..., tuple[Any, dict]]
    evaluate: Callable[[Any], dict]
    fingerprint: Callable[[], str]
    score: str  # the held-out metric the tests re-measure and compare with the manifest
    higher_is_better: bool = True
    header: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    build: Callable[[], Any] | None = None  # the untrained network (state-dict files)
    quick: dict = field(default_factory=dict)  # a short schedule, for the trainer's own test
    shown: tuple[str, ...] = ()  # held-out metrics the README's table gives (default: score)

    @property
    def spec(self):
        return get_spec(self.name)

    @property
    def path(self) -> Path:
        return SHIPPED_DIR / Path(self.spec.file).name

    # --- files -----------------------------------------------------------------------------

    def checkpoint(self, model, metrics: dict) -> dict:
        return {**self.header, **self.extra, "state_dict": model.state_dict(), "metrics": jsonable(metrics)}

    def save(self, model, metrics: dict, path: Path) -> None:
        """Write ``model`` and its metrics atomically to ``path``."""
        atomic_torch_save(self.checkpoint(model, metrics), path)

    def restore(self, ckpt: dict):
        """The eval-mode model from a checkpoint dict whose header already matched."""
        model = self.build()
        model.load_state_dict(ckpt["state_dict"])
        return model.eval()

    def read(self, path: Path) -> tuple[Any, dict]:
        """``(eval model, checkpoint)`` from any file written by :meth:`save` (no checksum);
        raises ValueError when its header does not fit this code."""
        import torch

        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        stale = {k: (ckpt.get(k), v) for k, v in self.header.items() if ckpt.get(k) != v}
        if stale:
            raise ValueError("it was made for another version of the code ("
                             + "; ".join(f"{k}: file {a!r}, code {b!r}" for k, (a, b) in stale.items()) + ")")
        return self.restore(ckpt), ckpt

    def verified_path(self) -> Path:
        """The shipped file, after its SHA-256 matched the manifest's (hashed once per size and
        mtime); WeightsUnavailable (with the fix) when it is missing or altered."""
        path = self.path
        if not path.is_file():
            raise WeightsUnavailable(self.spec, f"{_shown(path)} is missing from this checkout")
        expected = manifest().get(self.name, {}).get("sha256")
        if not expected:
            raise WeightsUnavailable(self.spec, f"models/trained/manifest.json has no entry for {self.name}")
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with _verified_lock:
            if _verified.get(key) != expected:
                actual = sha256_of(path)
                if actual != expected:
                    hint = " (a Git LFS pointer, not the file?)" if stat.st_size < 1000 else ""
                    raise WeightsUnavailable(self.spec, f"{_shown(path)} is not the shipped file{hint}: "
                                                        f"its SHA-256 {actual[:12]}… differs from the manifest's "
                                                        f"{expected[:12]}…")
                _verified[key] = expected
        return path

    def load(self):
        """The shipped model (eval mode), checked and read without unpickling objects."""
        path = self.verified_path()
        try:
            return self.read(path)[0]
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
            raise WeightsUnavailable(self.spec, f"{_shown(path)} cannot be used: {exc}") from exc

    def metrics(self) -> dict:
        """The held-out metrics recorded for the shipped file ({} when it has no entry)."""
        return dict(manifest().get(self.name, {}).get("metrics") or {})
