"""Typed, validated values for shareable links (the page's controls mirrored in the URL).

A :class:`Param` says what a control accepts; :func:`parse` turns whatever string came in
a URL into a valid value, or the default plus a notice saying why. It never raises, so a
hand-edited or truncated link cannot break a page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from core.safetext import literal


@dataclass(frozen=True, kw_only=True)
class Param:
    default: Any
    kind: type = float  # float, int, str or bool
    lo: float | None = None
    hi: float | None = None
    choices: tuple | None = None  # for str/int choices
    step: float | None = None  # floats are snapped to this grid (like the slider)
    # What the widget shows: declared here once, drawn by components.urlstate.UrlState
    # (``url.slider("bits", BITS)``), so a control's label, limits, step, default and help
    # live in one place.
    label: str = ""
    help: str | None = None

    def __post_init__(self):
        if self.kind not in (float, int, str, bool):
            raise TypeError(f"unsupported kind {self.kind}")
        ok, _ = _check(self, self.default)
        if not ok:
            raise ValueError(f"default {self.default!r} does not satisfy its own rules")


def _check(spec: Param, value: Any) -> tuple[bool, str]:
    if spec.choices is not None and value not in spec.choices:
        return False, "is not one of the choices"
    if spec.kind in (int, float):
        if not math.isfinite(value):
            return False, "is not a finite number"
        if spec.lo is not None and value < spec.lo or spec.hi is not None and value > spec.hi:
            return False, f"is outside {spec.lo}–{spec.hi}"
    return True, ""


def parse(raw: str | None, spec: Param) -> tuple[Any, str | None]:
    """(value, None) for a good raw string; (default, notice) for a missing or bad one.

    A missing value (None) is not an error: it silently gives the default."""
    if raw is None:
        return spec.default, None
    text = str(raw).strip()[:100]
    shown = literal(text, 40)  # the notice is Markdown on the page: a link value is shown, never rendered
    try:
        if spec.kind is bool:
            if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError
            value: Any = text.lower() in ("1", "true", "yes", "on")
        elif spec.kind is int:
            value = int(text)
        elif spec.kind is float:
            value = float(text)
            if spec.step and math.isfinite(value):
                base = spec.lo or 0.0
                value = round(base + round((value - base) / spec.step) * spec.step, 10)
        else:
            value = text
    except (ValueError, OverflowError):
        return spec.default, f"'{shown}' is not a valid {spec.kind.__name__}; using {spec.default}."
    ok, why = _check(spec, value)
    if not ok:
        return spec.default, f"'{shown}' {why}; using {spec.default}."
    return value, None


def dump(value: Any, spec: Param) -> str:
    """The URL form of a value (short: 0.25 not 0.25000000001)."""
    if spec.kind is bool:
        return "1" if value else "0"
    if spec.kind is float:
        return f"{float(value):.6g}"
    return str(value)
