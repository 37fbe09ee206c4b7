"""Object tracking (Q6, Q22, Q32): tracking by detection with Ultralytics' ByteTrack and BoT-SORT,
on a generated clip with exact ground truth (and an occluder) or on an uploaded video."""

import streamlit as st

from components.frame import lab_page
from components import models as cm
from components import tracking as ct
from components.session import video_input
from components.ui import Progress, weights_missing
from components.urlstate import UrlState
from core import tracking as trk
from core.jobs import JobRefused, JobTimeout
from core.params import Param
from core.perf import percentile

page = lab_page("object-tracking")
ctx = page.ctx

SOURCES = {"clip": "Generated clip (moving shapes, occluder, exact ground truth)", "upload": "Upload a video"}
SOURCE = Param(default="clip", kind=str, choices=tuple(SOURCES), label="Video")
TRACKER = Param(default="bytetrack", kind=str, choices=tuple(trk.TRACKERS), label="Tracker",
                help="Both are Ultralytics' own trackers with their default settings (bytetrack.yaml, "
                     "botsort.yaml); BoT-SORT runs without re-ID.")
CONF = Param(default=0.25, lo=0.1, hi=0.9, step=0.05, label="Detection confidence (track_high_thresh)",
             help="Detections above this are associated first and may start new tracks; those between "
                  f"{trk.DETECTION_FLOOR} and this only extend existing tracks (ByteTrack's second stage).")
BUFFER = Param(default=30, kind=int, lo=1, hi=90, label="track_buffer (frames)",
               help="How many frames a track that lost its object is kept, waiting to be matched again, "
                    "before it is deleted.")
SEED = Param(default=0, kind=int, lo=0, hi=9999, step=1, label="Clip number (seed)")
OCC_X = Param(default=0.5, lo=0.1, hi=0.9, step=0.05, label="Occluder position (centre, share of the width)")
OCC_W = Param(default=0.5, lo=0.0, hi=0.6, step=0.05, label="Occluder width (share of the width; 0 = none)",
              help="Every shape crosses the frame horizontally, so a wider bar hides it for longer.")
OCC_T = Param(default=trk.CLIP_FRAMES, kind=int, lo=0, hi=trk.CLIP_FRAMES, step=2, label="Occluder present for (frames)",
              help=f"Centred on the middle of the clip, when every shape is near the centre. "
                   f"{trk.CLIP_FRAMES} = the whole clip: the shapes walk behind a pillar. Fewer: the bar "
                   "drops in front of them and lifts again, like a passing bus.")
SHAPES = "shapes-yolo"

url = UrlState("track")
device = ctx.device.torch_device
source = url.radio("src", SOURCE, format_func=SOURCES.get, horizontal=True)
left, mid, right = st.columns(3)
tracker = url.radio("tracker", TRACKER, left, format_func=trk.TRACKERS.get, horizontal=True)
conf = url.slider("conf", CONF, mid)
buffer = url.slider("buffer", BUFFER, right)
conf = round(conf, 2)

run = None
progress = Progress(st.empty())
if source == "clip":
    a, b, c, d = st.columns(4)
    seed = int(url.number_input("seed", SEED, a))
    occ_x = round(url.slider("occx", OCC_X, b), 2)
    occ_w = round(url.slider("occw", OCC_W, c), 2)
    occ_t = int(url.slider("occt", OCC_T, d))
    st.caption(f"{trk.CLIP_FRAMES} frames of {trk.CLIP_SIZE}×{trk.CLIP_SIZE} px at {trk.CLIP_FPS:g} fps, drawn like "
               "the scenes the detector was trained on. Detector: **shapes-yolo** (YOLO11 layers trained here on "
               "such scenes; a COCO detector does not know these shapes). The sidebar image is not used here.")
    cm.require_shipped(SHAPES)
    try:
        found = ct.clip_detections(seed, occ_x, occ_w, occ_t, SHAPES, device, progress)
        run = ct.clip_run(seed, occ_x, occ_w, occ_t, SHAPES, device, tracker, conf, buffer, found, progress)
    except (JobRefused, JobTimeout) as err:
        st.warning(str(err), icon="⏳")
else:
    err = cm.check_available("yolo11n")
    names = ([] if err else ["yolo11n"]) + [SHAPES]
    if err:
        weights_missing(err)
        st.info("**Offline demonstration.** Without the COCO detector, uploads are tracked with the project's "
                "own shapes detector, which only knows circles, squares, triangles, stars, hexagons and crosses: "
                "download the video of the generated clip and upload it here, or switch to the generated clip.",
                icon="🧪")
    video = video_input("Your video (the first 120 frames are used, long side 640 px)", key="track.video")
    detector = st.selectbox("Detector", names, key="track.detector",
                            format_func=lambda n: f"{n} (COCO, 80 classes)" if n == "yolo11n" else f"{n} (shapes)")
    if video is None:
        st.info("Upload a short video (MP4, WebM, MOV or AVI) to track its objects.", icon="🎞️")
    else:
        if detector == SHAPES:
            cm.require_shipped(SHAPES)
        digest = ct.video_digest(video)
        key = (digest, detector, device)
        requested = st.session_state.setdefault("_track.requested", [])
        if key not in requested:
            st.caption(f"{len(video.frames)} frames of {video.frames[0].shape[1]}×{video.frames[0].shape[0]} px: "
                       f"one forward pass of {detector} per frame (several seconds on a CPU).")
            if st.button("Run tracking", type="primary", key="track.go"):
                requested[:] = [*requested[-3:], key]
        if key in requested:
            try:
                found = ct.upload_detections(digest, detector, device, video.frames, progress)
                run = ct.upload_run(digest, detector, device, tracker, conf, buffer, video.fps, video.frames, found,
                                    progress)
            except (JobRefused, JobTimeout) as err:
                st.warning(str(err), icon="⏳")
progress.done()
url.sync()


def _hex(rgb) -> str:
    return "#%02x%02x%02x" % tuple(rgb)


def timeline(score: trk.Score) -> None:
    """Which track id each true object was matched to, frame by frame."""
    label = {trk.MISS: "missed", trk.HIDDEN: "hidden"}
    rows = [{"frame": t + 1, "object": score.objects[o], "state": label.get(int(s), f"#{int(s)}")}
            for t, states in enumerate(score.states) for o, s in enumerate(states)]
    ids = sorted({int(s) for s in score.states.ravel() if s >= 1})
    domain = [f"#{i}" for i in ids] + ["missed", "hidden"]
    colours = [_hex(trk.track_colour(i)) for i in ids] + ["#111111", "#dddddd"]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "rect", "tooltip": True},
        "encoding": {
            "x": {"field": "frame", "type": "ordinal", "title": "frame", "axis": {"values": list(range(0, 121, 10))}},
            "y": {"field": "object", "type": "nominal", "title": None},
            "color": {"field": "state", "type": "nominal", "title": "matched to",
                      "scale": {"domain": domain, "range": colours}},
        },
        "height": {"step": 26},
    }, width="stretch")


def latency_chart(run: trk.TrackRun) -> None:
    rows = [{"frame": t + 1, "stage": stage, "ms": round(ms, 2)}
            for stage, values in (("detector", run.detector_ms), ("tracker", run.tracks.latency_ms))
            for t, ms in enumerate(values)]
    st.vega_lite_chart({
        "data": {"values": rows},
        "mark": {"type": "line", "tooltip": True},
        "encoding": {
            "x": {"field": "frame", "type": "quantitative", "title": "frame"},
            "y": {"field": "ms", "type": "quantitative", "title": "milliseconds"},
            "color": {"field": "stage", "type": "nominal", "title": None},
        },
        "height": 220,
    }, width="stretch")


if run is not None:
    st.subheader(f"Tracks · {trk.TRACKERS[run.tracker]}")
    view, facts = st.columns([3, 2])
    with view:
        st.video(run.video, format=trk.VIDEO_MIME, loop=True, autoplay=True, muted=True)
        st.download_button("Download the tracked video (WebM, VP8)", lambda run=run: run.video,
                           file_name=f"tracks_{run.tracker}.webm", mime=trk.VIDEO_MIME, key="track.download")
    with facts:
        score = run.score
        if score is not None:
            a, b = st.columns(2)
            a.metric("ID switches", score.events.switches,
                     help="A true object's matched track id differs from its id at its previous matched frame.")
            b.metric("Missed object-frames", score.events.missed,
                     help="Frames where an object is at least half visible but no track covers it (IoU ≥ 0.5).")
            a.metric("Dropped tracks", score.events.dropped,
                     help="An object tracked in one frame and missed in the next while still at least half visible.")
            b.metric("False-positive track boxes", score.false_positives,
                     help="Track boxes that match no true object (IoU ≥ 0.5) in their frame.")
            a.metric("MOTA", f"{score.mota:.2f}",
                     help="1 − (missed + false positives + ID switches) / object-frames at least half visible.")
            b.metric("Track ids used", run.n_tracks, help=f"{len(score.objects)} true objects in the clip.")
            st.caption(f"The longest occlusion lasts {score.longest_hidden} frames (an object less than half "
                       "visible). Ids per object: "
                       + "; ".join(f"{name} → {', '.join(f'#{i}' for i in ids) or 'none'}"
                                   for name, ids in zip(score.objects, score.ids_per_object())))
        else:
            a, b = st.columns(2)
            a.metric("Track ids used", run.n_tracks)
            b.metric("Frames", run.n_frames, help=f"{run.fps:g} fps")
            st.caption("An uploaded video has no ground truth, so switches cannot be counted; watch the ids "
                       "in the video as objects cross or hide.")
        d50, d95 = percentile(run.detector_ms, 50), percentile(run.detector_ms, 95)
        t50, t95 = percentile(run.tracks.latency_ms, 50), percentile(run.tracks.latency_ms, 95)
        a, b = st.columns(2)
        a.metric("Detector p50 / p95", f"{d50:.0f} / {d95:.0f} ms",
                 help="The forward pass per frame, measured when the frames were first detected.")
        b.metric("Tracker p50 / p95", f"{t50:.1f} / {t95:.1f} ms",
                 help="tracker.update per frame: Kalman prediction, association, track management.")
    if score is not None:
        st.markdown("**Identity timeline**: which track each true object was matched to, frame by frame "
                    "(black: missed, light grey: less than half visible).")
        timeline(score)
    st.markdown("**Latency per frame**")
    latency_chart(run)

with st.expander("How mistakes are counted", icon="📏"):
    st.markdown(
        "In every frame, tracks are matched one-to-one to the true objects by the Hungarian algorithm on IoU, "
        "among pairs with IoU ≥ 0.5 only (as CLEAR-MOT: weaker pairs are ruled out before assigning). An object **less than half visible** and unmatched is *hidden*: "
        "no one is blamed for it.\n"
        "- **ID switch**: the object is matched to a different id than at its previous matched frame "
        "(however many frames lie in between). Ids 1, 1, 1, 2, 2 → 1 switch.\n"
        "- **Missed object-frame** (lost): the object is at least half visible and no track matches it.\n"
        "- **Dropped track**: missed in a frame right after being tracked, while still at least half visible.\n"
        "- **MOTA** = 1 − (missed + false positives + switches) / (object-frames at least half visible).")

st.subheader("Occlusion experiment: ID switches against how long the occluder stays")
if source != "clip":
    st.caption("The experiment uses the generated clip, where the truth is known: switch the video above.")
elif occ_w == 0:
    st.caption("Give the occluder a width above to run the experiment.")
else:
    durations = ct.SWEEP_DURATIONS
    sweep_key = (seed, occ_x, occ_w, durations, conf, buffer, device)
    st.markdown(f"Clip {seed} is drawn again with the bar at {occ_x:.0%} of the width, {occ_w:.0%} wide, present "
                f"for {', '.join(map(str, durations))} frames around the middle of the clip ({durations[-1]} = "
                f"always); both trackers run on the same detections (confidence {conf:.2f}, "
                f"track_buffer {buffer}).")
    if st.session_state.get("_track.sweep") != sweep_key:
        if st.button(f"Run the sweep ({len(durations)} clips × 2 trackers)", key="track.sweep_go"):
            st.session_state["_track.sweep"] = sweep_key
    if st.session_state.get("_track.sweep") == sweep_key:
        points = None
        bar = Progress(st.empty())
        try:
            points = ct.sweep(seed, occ_x, occ_w, durations, SHAPES, device, conf, buffer, bar)
        except (JobRefused, JobTimeout) as err:
            st.session_state.pop("_track.sweep", None)
            st.warning(str(err), icon="⏳")
        bar.done()
        if points:
            rows = [{"occluder present (frames)": p.duration, "tracker": trk.TRACKERS[p.tracker],
                     "ID switches": p.events.switches, "missed object-frames": p.events.missed,
                     "dropped tracks": p.events.dropped, "longest occlusion (frames)": p.hidden_frames,
                     "track ids": p.n_ids} for p in points]
            charts = st.columns(2)
            for column, field in zip(charts, ("ID switches", "missed object-frames")):
                with column:
                    st.vega_lite_chart({
                        "data": {"values": rows},
                        "mark": {"type": "line", "point": True, "tooltip": True},
                        "encoding": {
                            "x": {"field": "occluder present (frames)", "type": "quantitative"},
                            "y": {"field": field, "type": "quantitative", "axis": {"tickMinStep": 1}},
                            "color": {"field": "tracker", "type": "nominal", "title": None},
                            "strokeDash": {"field": "tracker", "type": "nominal", "legend": None},
                        },
                        "height": 240,
                    }, width="stretch")
            hidden = {p.duration: p.hidden_frames for p in points}
            switches = "; ".join(f"{name}: " + ", ".join(str(p.events.switches) for p in points if p.tracker == kind)
                                 for kind, name in trk.TRACKERS.items())
            st.caption(f"ID switches per duration ({', '.join(map(str, hidden))} frames) · {switches}. Longest "
                       "occlusion: " + ", ".join(f"{d} → {f} frames" for d, f in hidden.items())
                       + f". track_buffer is {buffer} frames.")

page.close()
