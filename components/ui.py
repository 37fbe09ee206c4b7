"""Shared page furniture: the header with the questions a page answers, its explanation
and interview answer (from ``content/<slug>.md``), the "what to notice" footer, and the
message shown when a model's weights are missing."""

from __future__ import annotations

import contextvars
import re
from functools import lru_cache
from pathlib import Path

import streamlit as st

from core.topics import page_by_slug, questions_for
from models.registry import WeightsUnavailable

CONTENT = Path(__file__).resolve().parent.parent / "content"
SECTIONS = ("Explanation", "Interview answer", "What to notice")


@lru_cache(maxsize=64)
def page_text(slug: str) -> dict[str, str]:
    """The ``## Section`` blocks of ``content/<slug>.md``."""
    text = (CONTENT / f"{slug}.md").read_text(encoding="utf-8")
    parts = re.split(r"^## +(.+?)\s*$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def page_header(slug: str) -> None:
    page = page_by_slug(slug)
    st.title(f"{page.icon} {page.title}")
    for q in questions_for(slug):
        st.markdown(f"**Q{q.number}.** {q.text}")
    text = page_text(slug)
    st.markdown(text["Explanation"])
    with st.expander("Interview answer", icon="🎤"):
        st.markdown(text["Interview answer"])


def what_to_notice(slug: str) -> None:
    st.subheader("What to notice")
    st.markdown(page_text(slug)["What to notice"])


def weights_missing(err: WeightsUnavailable) -> None:
    spec = err.spec
    st.warning(
        f"**{spec.title} is not available here.** Its weights file `{spec.file}` "
        f"({spec.size_mb:.0f} MB) is not in the weights folder and could not be downloaded "
        f"({err.reason}).\n\nTo get it: on a machine with internet run "
        f"`python -m models.prefetch --only {spec.name}`, or download {spec.url} into the "
        f"weights folder (`CVLAB_WEIGHTS`, default `./weights`).",
        icon="📦",
    )


def grouped_bars(table: dict[str, list], *, category: str, series: list[str], unit: str) -> None:
    """Horizontal grouped bars (one group per ``category`` value, one bar per series).

    A Vega-Lite spec given as a plain dict: ``st.bar_chart`` builds it through Altair, whose
    schema validation cost 90 ms of server time on every rerun (half the detection page's)."""
    rows = [{category: c, "series": s, unit: table[s][i]} for i, c in enumerate(table[category]) for s in series]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": category, "type": "nominal", "title": None, "sort": None},
            "yOffset": {"field": "series", "sort": series},
            "x": {"field": unit, "type": "quantitative", "title": unit, "axis": {"tickMinStep": 1, "format": "d"}},
            "color": {"field": "series", "type": "nominal", "title": None, "sort": series},
        },
        "height": {"step": 14},
    }, width="stretch")


class Progress:
    """A callable ``(fraction, text)`` that shows an ``st.progress`` bar in ``slot`` (an ``st.empty()``).

    It may be called from inside a cached function or a worker: each update runs in the
    script context captured when the bar was made, so the bar is drawn on the right page and a
    cache hit (no call) shows no bar. ``done()`` removes it."""

    def __init__(self, slot):
        self.slot, self.bar = slot, None
        self._ctx = contextvars.copy_context()

    def _show(self, fraction: float, text: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.bar is None:
            self.bar = self.slot.progress(fraction, text=text)
        else:
            self.bar.progress(fraction, text=text)

    def __call__(self, fraction: float, text: str) -> None:
        self._ctx.run(self._show, fraction, text)

    def done(self) -> None:
        self.slot.empty()


def run_job(start):
    """Run a user-started job that a ``core.jobs.JobGate`` bounds, with a progress bar.

    ``start(progress)`` does the work; its result is returned. When the gate refuses (the
    server is busy) or the job runs out of time, the page shows the sentence as a warning and
    gets None. The bar is removed either way."""
    from core.jobs import JobRefused, JobTimeout

    bar = Progress(st.empty())
    try:
        return start(bar)
    except (JobRefused, JobTimeout) as err:
        st.warning(str(err), icon="⏳")
        return None
    finally:
        bar.done()
