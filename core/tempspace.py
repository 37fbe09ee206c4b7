"""Per-session temporary space: the only place the app writes a user's bytes to disk.

Most user data never touches the disk (images are decoded from memory). Where a library
insists on a path (OpenCV's video reader), the bytes go into a file inside the session's own
folder and the file is removed as soon as the call that needed it returns::

    space = SessionSpace("a-session-id")
    with space.file(".mp4", data) as path:
        frames = read_with_opencv(path)
    # the file is gone here; space.cleanup() removes the folder (also run when the
    # SessionSpace is garbage-collected with its session, and at interpreter exit)

Folders live under ``$CVLAB_TMP`` (default: the system temporary folder) in
``cvlab-<pid>/s-<hash of the session id>``, created with mode 0700. Nothing here imports
Streamlit; ``components.session`` ties a SessionSpace to a Streamlit session.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import weakref
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

_SAFE_SUFFIX = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


def process_root() -> Path:
    """The folder holding every session's space for this server process."""
    base = Path(os.environ.get("CVLAB_TMP") or tempfile.gettempdir())
    return base / f"cvlab-{os.getpid()}"


def _clean_suffix(suffix: str) -> str:
    """A user-influenced extension reduced to ``.[a-z0-9]{1,8}`` (no dots, no path separators)."""
    text = "".join(c for c in suffix.lower() if c in _SAFE_SUFFIX)[:8]
    return f".{text}" if text else ".bin"


class SessionSpace:
    """One session's temporary folder; files inside it exist only within ``file()``."""

    def __init__(self, session_id: str, *, root: Path | None = None):
        key = hashlib.sha256(session_id.encode()).hexdigest()[:16]
        self.path = (root or process_root()) / f"s-{key}"
        # Removes the folder when this object is collected (its session ended) or at exit.
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    @contextmanager
    def file(self, suffix: str, data: bytes) -> Iterator[Path]:
        """Write ``data`` to a new file in the session folder; remove it on exit."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=_clean_suffix(suffix), dir=self.path)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """What is in the folder now (empty between calls)."""
        return sorted(self.path.iterdir()) if self.path.is_dir() else []

    def cleanup(self) -> None:
        """Remove the folder and everything in it (idempotent)."""
        self._finalizer()
