"""The frame every topic page shares, so a page names its topic once.

    from components.frame import lab_page

    page = lab_page("quantization")   # page config from core/topics.py, the sidebar, the header
    ctx = page.ctx                    # the sidebar's context: image, device, …
    ...                               # controls -> one call into core -> render
    page.close()                      # "What to notice"

The page's browser title and icon come from the topic catalogue (``core.topics``), never
typed again in the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from components.sidebar import LabContext, lab_sidebar
from components.ui import page_header, what_to_notice
from core.topics import page_by_slug

APP_NAME = "CV Interview Lab"


def browser_title(slug: str) -> str:
    return f"{page_by_slug(slug).title} · {APP_NAME}"


@dataclass(frozen=True)
class LabPage:
    slug: str
    ctx: LabContext

    def close(self) -> None:
        """The page's last section: what to notice in the demo above."""
        what_to_notice(self.slug)


def lab_page(slug: str) -> LabPage:
    """Open the topic page ``slug``: page config, the shared sidebar, then the header
    (questions, explanation, interview answer)."""
    topic = page_by_slug(slug)
    st.set_page_config(page_title=browser_title(slug), page_icon=topic.icon, layout="wide")
    ctx = lab_sidebar()
    page_header(slug)
    return LabPage(slug, ctx)
