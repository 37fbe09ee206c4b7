"""Mirror a page's main controls into the URL so a link reproduces the page.

Usage on a page (a control is declared once, as a :class:`core.params.Param` with its label,
limits, step, default and help; the widget is drawn from it)::

    CONF = Param(default=0.25, lo=0.05, hi=0.95, step=0.05, label="Confidence", help="…")
    url = UrlState("det")
    conf = url.slider("conf", CONF)            # or url.slider("conf", CONF, column)
    ...
    url.sync()   # writes the current values back into st.query_params

``key`` seeds the widget from the URL the first time the widget appears in a session
(bad values fall back to the default with a notice); ``sync`` keeps the URL current.
"""

from __future__ import annotations

import streamlit as st

from core.params import Param, dump, parse


class UrlState:
    def __init__(self, prefix: str = "url"):
        self.prefix = prefix
        self.bound: dict[str, tuple[str, Param]] = {}
        self.notices: list[str] = []

    def key(self, name: str, spec: Param) -> str:
        """Session-state key for a widget mirrored as ``?name=`` in the URL."""
        key = f"{self.prefix}.{name}"
        if key not in st.session_state:
            value, notice = parse(st.query_params.get(name), spec)
            if notice:
                self.notices.append(f"Link parameter `{name}`: {notice}")
            st.session_state[key] = value
        self.bound[name] = (key, spec)
        return key

    # --- widgets drawn from their declaration ------------------------------------------------
    # ``where``: a column or container (default: the main area); ``extra``: what only the widget
    # needs (format_func, format, horizontal, disabled, on_change, label_visibility…).

    def _number_args(self, spec: Param) -> dict:
        cast = int if spec.kind is int else float
        out = {}
        if spec.lo is not None:
            out["min_value"] = cast(spec.lo)
        if spec.hi is not None:
            out["max_value"] = cast(spec.hi)
        if spec.step is not None:
            out["step"] = cast(spec.step)
        return out

    def slider(self, name: str, spec: Param, where=None, **extra):
        return (where or st).slider(spec.label, **self._number_args(spec), key=self.key(name, spec),
                                    help=spec.help, **extra)

    def number_input(self, name: str, spec: Param, where=None, **extra):
        return (where or st).number_input(spec.label, **self._number_args(spec), key=self.key(name, spec),
                                          help=spec.help, **extra)

    def _choice(self, widget: str, name: str, spec: Param, where=None, **extra):
        if spec.choices is None:
            raise ValueError(f"{name}: a {widget} needs Param(choices=...)")
        draw = getattr(where or st, widget)
        return draw(spec.label, list(spec.choices), key=self.key(name, spec), help=spec.help, **extra)

    def radio(self, name: str, spec: Param, where=None, **extra):
        return self._choice("radio", name, spec, where, **extra)

    def selectbox(self, name: str, spec: Param, where=None, **extra):
        return self._choice("selectbox", name, spec, where, **extra)

    def select_slider(self, name: str, spec: Param, where=None, **extra):
        return self._choice("select_slider", name, spec, where, **extra)

    def checkbox(self, name: str, spec: Param, where=None, **extra):
        return (where or st).checkbox(spec.label, key=self.key(name, spec), help=spec.help, **extra)

    def toggle(self, name: str, spec: Param, where=None, **extra):
        return (where or st).toggle(spec.label, key=self.key(name, spec), help=spec.help, **extra)

    def sync(self) -> None:
        """Write every bound value into the URL and show notices for bad link values."""
        for name, (key, spec) in self.bound.items():
            if key in st.session_state:
                text = dump(st.session_state[key], spec)
                if st.query_params.get(name) != text:
                    st.query_params[name] = text
        for notice in self.notices:
            st.info(notice, icon="🔗")
        self.notices.clear()
