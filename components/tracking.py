"""Cached, bounded tracking runs for the Object tracking page.

Two cache layers, so that what a user changes most costs least:

* detections per (video, detector, device) - the expensive part (one forward pass a frame);
* a tracking run per (video, detector, device, tracker, confidence, track buffer) - the
  tracker itself, scoring against ground truth, drawing and video encoding (about a second).

Each layer is ``st.cache_data`` with a few entries, and its body (run only on a miss) holds a
slot of :data:`JOBS` (one run per session, two per server) with a time limit.

Progress bars: a cached function records every Streamlit call it makes and replays it on a
cache hit; a call on a progress bar created *outside* the function cannot be replayed and
makes the hit fail (``CacheReplayClosureError``). :class:`components.ui.Progress` therefore runs its
updates in a copy of the page's ``contextvars`` context taken before the cached call, where
Streamlit's "inside a cached function" flag is still unset: the bar moves live and nothing is
recorded. The bar is created on the first update only, so a cache hit shows no bar at all.
"""

from __future__ import annotations

import hashlib

import streamlit as st

from components import models as cm
from components.session import session_id

from core import tracking as trk
from core.jobs import JobGate

JOBS = JobGate("tracking run", max_running=2, per_session=1, time_limit_s=300)
SWEEP_DURATIONS = (0, 6, 12, 18, 24, 36, 60)  # frames the occluder is present


def video_digest(video) -> str:
    """A digest of a decoded upload's frames, computed once per video object of the session."""
    ss = st.session_state
    known = ss.get("_track.digest")
    if known and known[0] == id(video):
        return known[1]
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((len(video.frames), video.frames[0].shape, round(video.fps, 3))).encode())
    for frame in video.frames:
        h.update(frame.data)
    ss["_track.digest"] = (id(video), h.hexdigest())
    return ss["_track.digest"][1]


@st.cache_resource(max_entries=2, show_spinner=False)
def clip(seed: int, x: float, width: float, duration: int) -> trk.Clip:
    """The generated clip (shared, read-only: 60 frames of 320×320 hold 18 MB)."""
    return trk.make_clip(seed, occluder=trk.Occluder.centred(x=x, width=width, duration=duration))


def _detect(frames, detector: str, device: str, progress) -> trk.FrameDetections:
    with JOBS.slot(session_id()) as deadline:
        return trk.detect_frames(frames, cm.detector(detector, device), progress=progress, check=deadline.check)


@st.cache_data(max_entries=4, show_spinner=False)
def clip_detections(seed: int, x: float, width: float, duration: int, detector: str, device: str,
                    _progress) -> trk.FrameDetections:
    return _detect(clip(seed, x, width, duration).frames, detector, device, _progress)


@st.cache_data(max_entries=4, show_spinner=False)
def clip_run(seed: int, x: float, width: float, duration: int, detector: str, device: str, tracker: str, conf: float,
             buffer: int, _found: trk.FrameDetections, _progress) -> trk.TrackRun:
    video = clip(seed, x, width, duration)
    with JOBS.slot(session_id()) as deadline:
        return trk.track_and_render(tracker, video.frames, _found, fps=video.fps, high_thresh=conf,
                                    track_buffer=buffer, gmc="none", clip=video, check=deadline.check,
                                    progress=_progress)


@st.cache_data(max_entries=4, show_spinner=False)
def upload_detections(digest: str, detector: str, device: str, _frames, _progress) -> trk.FrameDetections:
    return _detect(_frames, detector, device, _progress)


@st.cache_data(max_entries=4, show_spinner=False)
def upload_run(digest: str, detector: str, device: str, tracker: str, conf: float, buffer: int, fps: float,
               _frames, _found: trk.FrameDetections, _progress) -> trk.TrackRun:
    with JOBS.slot(session_id()) as deadline:
        # A filmed scene may pan: BoT-SORT estimates the camera's motion by sparse optical flow.
        return trk.track_and_render(tracker, _frames, _found, fps=fps, high_thresh=conf, track_buffer=buffer,
                                    gmc="sparseOptFlow", check=deadline.check, progress=_progress)


@st.cache_data(max_entries=4, show_spinner=False)
def sweep(seed: int, x: float, width: float, durations: tuple[int, ...], detector: str, device: str, conf: float,
          buffer: int, _progress) -> list[trk.SweepPoint]:
    with JOBS.slot(session_id()) as deadline:
        return trk.occlusion_sweep(seed, durations, cm.detector(detector, device), x=x, width=width, high_thresh=conf,
                                   track_buffer=buffer, progress=_progress, check=deadline.check)
