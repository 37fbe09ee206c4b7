"""Per-session resources: the session's temporary folder and its video upload.

    space = session_space()                  # core.tempspace.SessionSpace of this session
    video = video_input("Your video", key="track.video")   # DecodedVideo or None

The temporary folder is removed when the session's state is dropped (the session ended)
and at server exit. A video upload that cannot be decoded shows the decoder's message and
keeps the session's previous video, exactly like an image upload in the sidebar.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

from core.safetext import literal
from core.tempspace import SessionSpace
from core.video import DecodedVideo, VideoDecodeError, decode_video

VIDEO_TYPES = ["mp4", "mov", "webm", "avi", "mkv", "m4v"]
_SPACE = "_lab.space"


def session_id() -> str:
    """This browser session's id (keys per-session temp folders and job slots)."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else "no-session"


def session_space() -> SessionSpace:
    """This session's temporary folder (created on first use, removed with the session)."""
    ss = st.session_state
    if _SPACE not in ss:
        ss[_SPACE] = SessionSpace(session_id())
    return ss[_SPACE]


def video_input(label: str, *, key: str, help: str | None = None) -> DecodedVideo | None:
    """An uploader whose file is decoded once per upload; the last good video stays active."""
    ss = st.session_state
    upload = st.file_uploader(label, type=VIDEO_TYPES, key=key, help=help)
    good, seen, error = f"_{key}.video", f"_{key}.seen", f"_{key}.error"
    if upload is not None and ss.get(seen) != upload.file_id:
        ss[seen] = upload.file_id
        try:
            with st.spinner(f"Decoding {literal(upload.name)}…"):
                ss[good] = decode_video(upload.getvalue(), space=session_space())
            ss[error] = None
        except VideoDecodeError as err:
            keeps = " The previous video stays active." if ss.get(good) is not None else ""
            ss[error] = f"{literal(upload.name)}: {err}{keeps}"
    if ss.get(error):
        st.error(ss[error], icon="🎞️")
    video = ss.get(good)
    if video is not None:
        for note in video.notes:
            st.caption(note)
    return video
