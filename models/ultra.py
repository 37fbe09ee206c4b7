"""The one way this project imports Ultralytics: :func:`core.ultra.ultralytics`, re-exported
(the import's side effects and how they are switched off are documented there)."""

from __future__ import annotations

from core.ultra import ultralytics  # noqa: F401  (re-exported)
