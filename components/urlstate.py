"""Mirror a page's main controls into the URL so a link reproduces the page.

Usage on a page::

    url = UrlState()
    conf = st.slider("Confidence", 0.05, 0.95, key=url.key("conf", CONF))
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
