"""User-supplied text (file names, link values) shown on a page as literal text.

Streamlit renders the text of ``st.error``, ``st.caption``, ``st.info`` and friends as
Markdown (never as raw HTML unless ``unsafe_allow_html`` is passed, which this app never
does with user text). Markdown still turns ``[x](http://…)`` into a link, ``![x](…)`` into an
image the browser would fetch, ``$…$`` into maths, and a bare ``http://…`` into a link. ``literal`` escapes every character
with a Markdown meaning, so a file called ``![x](http://evil/p.png)`` is shown as exactly
that, and strips control characters and over-long text.
"""

from __future__ import annotations

import re

MAX_LEN = 120
_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&=@])")
_AUTOLINK = re.compile(r"(?i)\b(?:https?|ftp|mailto)\\:|\bwww(?=\\\.)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def literal(text: object, max_len: int = MAX_LEN) -> str:
    """``text`` made safe to put inside Markdown: it will display as the same characters."""
    s = _CONTROL.sub("", str(text))
    if len(s) > max_len:
        s = s[: max_len - 1] + "…"
    s = _SPECIAL.sub(r"\\\1", s)
    # Escaping does not stop the autolinker ("http://…", "www.…" become links); an invisible
    # word joiner after the scheme or "www" does, and displays as nothing.
    return _AUTOLINK.sub(lambda m: m.group(0) + "\u2060", s)
