"""Object tracking: the mistake counters on hand-made cases, the generated clip's ground truth,
Ultralytics' trackers on hand-made detections and on our detector's, the video file, and the page."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import tracking as trk
from core.detection import Detections
from core.tracking import HIDDEN, MISS, Events

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/05_Object_tracking.py"
TIMEOUT = 600
M, H = MISS, HIDDEN


# --------------------------------------------------------------------------- counting, by hand

# (per-frame states of ONE object, expected (switches, missed, dropped), why)
COUNT_CASES = [
    ([1, 1, 1, 2, 2], (1, 0, 0), "id 1 then id 2: one switch"),
    ([1, 1, M, 1, 1], (0, 1, 1), "unmatched in frame 3 while visible: 1 missed frame, 1 dropped track"),
    ([1, 2, 1], (2, 0, 0), "a swap and back: two switches"),
    ([1, 1, H, H, 2], (1, 0, 0), "new id after an occlusion: a switch, but nobody blamed while hidden"),
    ([1, 1, H, H, 1], (0, 0, 0), "same id after an occlusion: no switch"),
    ([1, M, M, 2], (1, 2, 1), "dropped, missed twice, then re-acquired under a new id"),
    ([1, H, M, 1], (0, 1, 0), "missed after being hidden is not a drop (it was not tracked just before)"),
    ([M, M, 3, 3], (0, 2, 0), "found late: missed frames, no switch"),
    ([H, H, H], (0, 0, 0), "never visible"),
    ([], (0, 0, 0), "no frames"),
    ([4, M, 4, M, 4], (0, 2, 2), "flicker: every gap is a drop"),
]


@pytest.mark.parametrize("states,expected,why", COUNT_CASES, ids=[c[2] for c in COUNT_CASES])
def test_count_events_hand_checked(states, expected, why):
    assert trk.count_events(states) == Events(*expected), why


def test_count_events_rejects_unknown_states():
    with pytest.raises(ValueError):
        trk.count_events([1, -2])


def _clip(boxes, visible) -> trk.Clip:
    boxes = np.asarray(boxes, np.float32)
    frames = tuple(np.zeros((40, 40, 3), np.uint8) for _ in range(len(boxes)))
    return trk.Clip(frames, boxes, np.asarray(visible, np.float32), np.array([0, 1]), 10.0, trk.Occluder())


def _tracks(rows) -> trk.Tracks:
    out = tuple(np.asarray([[*b, i, 0.9, 0] for b, i in r], np.float32).reshape(-1, 7) for r in rows)
    return trk.Tracks("bytetrack", out, tuple(0.0 for _ in rows))


def test_evaluate_matches_tracks_to_truth_by_iou_and_counts_by_hand():
    a, b = (0, 0, 10, 10), (20, 0, 30, 10)
    nan = (np.nan,) * 4
    clip = _clip([[a, b], [a, b], [a, nan], [a, b], [a, b]],
                 [[1, 1], [1, 1], [1, 0.2], [1, 1], [1, 1]])
    tracks = _tracks([
        [(a, 1), (b, 2)],
        [(a, 1), (b, 2)],
        [(a, 1)],                                    # B hidden (20 % visible): nothing to match
        [((0, 0, 10, 20), 3), ((21, 0, 31, 10), 2)],  # A: IoU exactly 0.5 counts; B shifted 1 px
        [((0, 0, 10, 21), 1), (b, 2), ((35, 30, 39, 39), 9)],  # A: IoU 100/210 < 0.5; id 9 is a stray box
    ])
    score = trk.evaluate(tracks, clip)
    assert score.states.T.tolist() == [[1, 1, 1, 3, M], [2, 2, H, 2, 2]]
    assert score.per_object == (Events(1, 1, 1), Events(0, 0, 0))
    assert score.events == Events(1, 1, 1)
    assert score.false_positives == 2  # the too-tall box on A in frame 5, and the stray box
    assert score.gt_frames == 9
    assert score.mota == pytest.approx(1 - (1 + 2 + 1) / 9)
    assert score.ids_per_object() == [[1, 3], [2]]


def test_matching_is_one_to_one_and_maximises_total_iou():
    truth = np.array([[0, 0, 10, 10], [6, 0, 16, 10]], np.float32)
    # greedy would give track 0 (IoU 0.67 with object 0) first; both tracks still get their best partner
    tracks = np.array([[1, 0, 11, 10], [5, 0, 15, 10]], np.float32)
    assert sorted(trk.match_frame(tracks, truth)) == [(0, 0), (1, 1)]
    assert trk.match_frame(tracks[:1], truth[:1]) == [(0, 0)]
    assert trk.match_frame(np.zeros((0, 4), np.float32), truth) == []


# Boxes 10 px tall, so IoU is the overlap of the x intervals over their union:
#   track 0 [10, 20] - object 0 [10, 25]: 10/15 = 0.667 (the only pair >= 0.5)
#   track 0 [10, 20] - object 1 [15.5, 20]: 4.5/10 = 0.45
#   track 1 [4, 15]  - object 0 [10, 25]: 5/21 = 0.238;  track 1 - object 1: 0
# Raw IoU sums: 0.667 + 0 on the valid assignment < 0.45 + 0.238 on the crossed one. Assigning on
# raw IoU and dropping weak pairs afterwards matched nobody (MOTA 1 - (2 missed + 2 FP) / 2 = -1);
# CLEAR-MOT (py-motmetrics: pairs beyond the threshold are forbidden in the assignment) keeps
# track 0 - object 0: 1 missed, 1 false positive, MOTA 0.
CROSSED_TRACKS = [(10, 0, 20, 10), (4, 0, 15, 10)]
CROSSED_TRUTH = [(10, 0, 25, 10), (15.5, 0, 20, 10)]


def test_matching_forbids_weak_pairs_before_assigning_as_clear_mot():
    tracks, truth = np.array(CROSSED_TRACKS, np.float32), np.array(CROSSED_TRUTH, np.float32)
    iou = trk.box_iou(tracks, truth)
    assert iou[0, 0] >= 0.5 and (iou >= 0.5).sum() == 1 and iou[0, 1] + iou[1, 0] > iou[0, 0] + iou[1, 1]
    assert trk.match_frame(tracks, truth) == [(0, 0)]
    assert trk.match_frame(tracks[::-1].copy(), truth[::-1].copy()) == [(1, 1)]  # order does not matter
    score = trk.evaluate(_tracks([[(CROSSED_TRACKS[0], 1), (CROSSED_TRACKS[1], 2)]]), _clip([CROSSED_TRUTH], [[1, 1]]))
    assert (score.events.missed, score.false_positives, score.gt_frames) == (1, 1, 2)
    assert score.mota == pytest.approx(0.0)


def test_matching_prefers_more_valid_pairs_then_higher_total_iou():
    # random 1-D boxes (10 px tall): 4 tracks, 3 objects, checked against every assignment
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.uniform(0, 40, (4, 2))
        tracks = np.concatenate([np.minimum(a[:, :1], a[:, 1:]), np.zeros((4, 1)),
                                 np.maximum(a[:, :1], a[:, 1:]) + 1, np.full((4, 1), 10)], 1).astype(np.float32)
        b = rng.uniform(0, 40, (3, 2))
        truth = np.concatenate([np.minimum(b[:, :1], b[:, 1:]), np.zeros((3, 1)),
                                np.maximum(b[:, :1], b[:, 1:]) + 1, np.full((3, 1), 10)], 1).astype(np.float32)
        iou = trk.box_iou(tracks, truth)
        pairs = trk.match_frame(tracks, truth)
        best = (0, 0.0)  # brute force: (most valid pairs, then largest total IoU) over every assignment
        for perm in itertools.permutations(range(4), 3):
            valid = [(t, o) for o, t in enumerate(perm) if iou[t, o] >= 0.5]
            best = max(best, (len(valid), float(sum(iou[t, o] for t, o in valid))))
        assert all(iou[t, o] >= 0.5 for t, o in pairs)
        assert len({t for t, _ in pairs}) == len({o for _, o in pairs}) == len(pairs)
        assert len(pairs) == best[0]
        assert float(sum(iou[t, o] for t, o in pairs)) == pytest.approx(best[1], abs=1e-6)


# --------------------------------------------------------------------------- the generated clip


def test_clip_is_deterministic_and_its_truth_is_exact():
    one, two = trk.make_clip(3), trk.make_clip(3)
    assert all(np.array_equal(x, y) for x, y in zip(one.frames, two.frames))
    assert np.array_equal(one.boxes, two.boxes, equal_nan=True)
    assert len(one.frames) == trk.CLIP_FRAMES and one.frames[0].shape == (trk.CLIP_SIZE, trk.CLIP_SIZE, 3)
    assert one.n_objects == 3 and len(set(one.labels.tolist())) == 3
    assert (one.visible > 0.3).all(), "without an occluder every shape stays mostly visible"
    # a fully visible object's truth box is the tight box of the pixels of its colour
    for t in (0, 30, 59):
        for i in np.flatnonzero(one.visible[t] >= 0.999):
            x0, y0, x1, y1 = one.boxes[t, i].astype(int)
            colour = one.frames[t][(y0 + y1) // 2, (x0 + x1) // 2]
            ys, xs = np.nonzero((one.frames[t] == colour).all(axis=-1))
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1), (t, i)
    # shapes are as large, relative to the frame, as in the detector's training scenes (0.18-0.36)
    wide, tall = one.boxes[..., 2] - one.boxes[..., 0], one.boxes[..., 3] - one.boxes[..., 1]
    sides = np.maximum(wide, tall)[one.visible >= 0.999]
    assert 0.12 * trk.CLIP_SIZE <= sides.min() and sides.max() <= 0.36 * trk.CLIP_SIZE


def test_occluder_hides_shapes_for_longer_the_wider_it_is():
    bare = trk.make_clip(0)
    hidden = [trk.make_clip(0, occluder=trk.Occluder(x=0.5, width=w)).longest_hidden() for w in (0.0, 0.2, 0.4)]
    assert hidden[0] == bare.longest_hidden() == 0
    assert hidden[0] < hidden[1] < hidden[2]
    assert trk.Occluder.centred(x=0.5, width=0.5, duration=12) == trk.Occluder(0.5, 0.5, start=24, end=36)
    assert trk.Occluder.centred(x=0.5, width=0.5, duration=0).width == 0
    assert trk.Occluder.centred(x=0.5, width=0.5, duration=99) == trk.Occluder(0.5, 0.5)
    clip = trk.make_clip(0, occluder=trk.Occluder(x=0.5, width=0.3, start=10, end=40))
    x0, x1 = clip.occluder.columns(trk.CLIP_SIZE)
    assert (clip.frames[20][:, x0:x1] == trk.OCCLUDER_GREY).all()
    assert not (clip.frames[5][:, x0:x1] == trk.OCCLUDER_GREY).all(axis=-1).all()  # not yet present
    assert np.array_equal(clip.frames[5], bare.frames[5])  # the occluder changes nothing else
    gone = clip.visible == 0
    assert gone.any() and np.isnan(clip.boxes[gone]).all()
    # a visible box never reaches into the bar while it is there
    for t in range(10, 40):
        for box in clip.boxes[t][~np.isnan(clip.boxes[t, :, 0])]:
            assert box[2] <= x0 or box[0] >= x1


# --------------------------------------------------------------------------- Ultralytics' trackers


def test_tracker_config_is_ultralytics_yaml_with_our_overrides():
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import ROOT, YAML

    overrides = {"track_high_thresh": 0.4, "new_track_thresh": 0.4, "track_buffer": 7}
    for kind, cls in (("bytetrack", BYTETracker), ("botsort", BOTSORT)):
        shipped = YAML.load(ROOT / "cfg" / "trackers" / f"{kind}.yaml")
        cfg = vars(trk.tracker_config(kind, high_thresh=0.4, track_buffer=7))
        if kind == "botsort":
            overrides |= {"with_reid": False, "gmc_method": "none"}
        assert cfg == shipped | overrides
        tracker = trk.make_tracker(kind, track_buffer=7)
        assert type(tracker) is cls and tracker.max_frames_lost == 7
    assert trk.tracker_config("botsort").with_reid is False


def _moving_boxes(n_frames: int, gap: range = range(0), speed: float = 4.0) -> trk.FrameDetections:
    """Two boxes moving right at ``speed`` px/frame; the first one is not detected during ``gap``."""
    dets = []
    for t in range(n_frames):
        boxes = [[10 + speed * t, 20, 50 + speed * t, 60], [10 + speed * t, 120, 50 + speed * t, 160]]
        if t in gap:
            boxes = boxes[1:]
        dets.append(Detections(np.array(boxes, np.float32), np.full(len(boxes), 0.9, np.float32),
                               np.zeros(len(boxes), np.int64), ("thing",)))
    return trk.FrameDetections(tuple(dets), tuple(1.0 for _ in dets), ("thing",))


@pytest.mark.parametrize("kind", list(trk.TRACKERS))
def test_trackers_keep_ids_and_track_buffer_decides_whether_a_gap_is_bridged(kind):
    steady = trk.run_tracker(kind, _moving_boxes(30))
    assert [sorted(r[:, 4].astype(int)) for r in steady.rows] == [[1, 2]] * 30
    first = lambda tracks, t: {int(r[4]) for r in tracks.rows[t] if r[1] < 90}  # noqa: E731  (the upper box)
    # hidden for 6 frames on a straight path: the Kalman prediction is still on it
    bridged = trk.run_tracker(kind, _moving_boxes(30, gap=range(10, 16)), track_buffer=30)
    assert first(bridged, 9) == first(bridged, 20) == {1}
    # the same gap with a 3-frame buffer: the lost track is deleted before the box returns
    deleted = trk.run_tracker(kind, _moving_boxes(30, gap=range(10, 16)), track_buffer=3)
    assert first(deleted, 9) == {1} and first(deleted, 20) not in ({1}, set())
    assert len(steady.latency_ms) == 30


# --------------------------------------------------------------------------- with our detector


@pytest.fixture(scope="module")
def detector(trained_shapes_yolo):
    from models.detectors import UltralyticsDetector
    from models.shapes_yolo import IMGSZ

    return UltralyticsDetector(trained_shapes_yolo, name="shapes-yolo", title="shapes", imgsz=IMGSZ)


@pytest.fixture(scope="module")
def clean(detector):
    clip = trk.make_clip(0)
    return clip, trk.detect_frames(clip.frames, detector)


@pytest.fixture(scope="module")
def occluded(detector):
    """The page's default: clip 0 behind a bar half the width wide, in the middle, all the time."""
    clip = trk.make_clip(0, occluder=trk.Occluder.centred(x=0.5, width=0.5, duration=trk.CLIP_FRAMES))
    return clip, trk.detect_frames(clip.frames, detector)


def _no_switch(clip, found):
    for kind in trk.TRACKERS:
        score = trk.evaluate(trk.run_tracker(kind, found, clip.frames), clip)
        assert score.events.switches == 0, (kind, score.ids_per_object())
        assert all(len(ids) == 1 for ids in score.ids_per_object()), (kind, score.ids_per_object())
        tracked = (score.states >= 1).mean(axis=0)
        assert (tracked >= 0.9).all(), (kind, tracked)  # "no switch" is not "never tracked"
        assert score.events.missed <= 3 and score.mota >= 0.9, (kind, score.events, score.mota)


def test_no_occlusion_no_id_switch(clean):
    _no_switch(*clean)


def test_no_occlusion_no_id_switch_on_another_clip(detector):
    clip = trk.make_clip(2)
    _no_switch(clip, trk.detect_frames(clip.frames, detector))


def test_long_occlusion_makes_bytetrack_switch_ids(occluded):
    """Measured: each of the 3 shapes walks behind the bar, is less than half visible for up to
    41 frames and comes back under a new id (3 switches). Two reasons, both real: the hiding
    outlasts track_buffer (30 frames), and while a shape slides behind the bar its visible box
    shrinks from the front, so the Kalman velocity drops and the coasting prediction lags."""
    clip, found = occluded
    assert clip.longest_hidden() > 30
    score = trk.evaluate(trk.run_tracker("bytetrack", found, clip.frames), clip)
    assert score.events.switches >= 1, score.ids_per_object()
    assert max(len(ids) for ids in score.ids_per_object()) >= 2


def test_a_sudden_short_occlusion_is_bridged_only_within_track_buffer(detector):
    """The bar drops in front of the shapes for 12 frames and lifts again: their tracks coast on
    the Kalman prediction and are matched again - unless track_buffer is shorter than the gap."""
    clip = trk.make_clip(0, occluder=trk.Occluder.centred(x=0.5, width=0.5, duration=12))
    assert clip.longest_hidden() == 12
    found = trk.detect_frames(clip.frames, detector)
    for kind in trk.TRACKERS:
        kept = trk.evaluate(trk.run_tracker(kind, found, clip.frames, track_buffer=30), clip)
        assert kept.events.switches == 0 and all(len(i) == 1 for i in kept.ids_per_object()), kind
        forgotten = trk.evaluate(trk.run_tracker(kind, found, clip.frames, track_buffer=5), clip)
        assert forgotten.events.switches >= 1, (kind, forgotten.ids_per_object())


def test_sweep_redraws_the_clips_and_counts_what_evaluate_counts(clean, occluded, monkeypatch):
    """The sweep's glue, on the detections already computed for the same two clips."""
    known = {0: clean, trk.CLIP_FRAMES: occluded}

    def cached_detect(frames, detector, **kw):
        hits = [found for clip, found in known.values() if np.array_equal(clip.frames[30], frames[30])]
        assert len(hits) == 1, "the sweep drew a clip that differs from make_clip's"
        return hits[0]

    monkeypatch.setattr(trk, "detect_frames", cached_detect)
    points = trk.occlusion_sweep(0, (0, trk.CLIP_FRAMES), detector=None, x=0.5, width=0.5)
    assert [(p.duration, p.tracker) for p in points] == [(0, "bytetrack"), (0, "botsort"),
                                                       (60, "bytetrack"), (60, "botsort")]
    for p in points:
        clip, found = known[p.duration]
        score = trk.evaluate(trk.run_tracker(p.tracker, found, clip.frames), clip)
        assert (p.events, p.false_positives, p.hidden_frames) == (score.events, score.false_positives,
                                                                  clip.longest_hidden())
    assert points[0].hidden_frames == 0 and points[2].events.switches > points[0].events.switches


# --------------------------------------------------------------------------- the video file


def test_encoded_video_is_vp8_webm_with_every_frame(clean):
    clip, found = clean
    tracks = trk.run_tracker("bytetrack", found, clip.frames)
    drawn = trk.draw_tracks(clip.frames, tracks, found.categories)
    assert not np.array_equal(drawn[10], clip.frames[10])  # boxes and ids are drawn
    info = trk.probe_video(trk.encode_video(drawn, clip.fps))
    assert info.codec == "VP80" and info.container == "webm"  # a codec every current browser plays
    assert info.frames == len(clip.frames) and info.size == (trk.CLIP_SIZE, trk.CLIP_SIZE)
    odd = trk.probe_video(trk.encode_video([f[:99, :75] for f in drawn[:5]], 10.0))
    assert odd.codec == "VP80" and odd.frames == 5 and odd.size == (76, 100)  # padded to even sizes


# --------------------------------------------------------------------------- the page


def _page():
    """A fresh session on this page, opened through Home (a tracking run may take minutes)."""
    at = AppTest.from_file(str(ROOT / "Home.py"), default_timeout=TIMEOUT)
    at.switch_page(PAGE)
    return at.run()


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_page_shows_the_switch_count_of_the_pure_functions(occluded):
    clip, found = occluded
    score = trk.evaluate(trk.run_tracker("bytetrack", found, clip.frames), clip)
    at = _page()
    assert not at.exception, [e.value for e in at.exception]
    assert "Active: Astronaut" in "\n".join(c.value for c in at.caption)  # the shared sidebar ran
    assert int(_metric(at, "ID switches")) == score.events.switches
    assert int(_metric(at, "Missed object-frames")) == score.events.missed
    assert _metric(at, "MOTA") == f"{score.mota:.2f}"
    videos = at.get("video")
    assert len(videos) == 1 and videos[0].proto.url.endswith(".webm")
    # a rerun that changes nothing is served from the cache (and its replay must not fail)
    at.run()
    assert not at.exception and int(_metric(at, "ID switches")) == score.events.switches
    at.radio(key="track.tracker").set_value("botsort").run()
    botsort = trk.evaluate(trk.run_tracker("botsort", found, clip.frames), clip)
    assert not at.exception and int(_metric(at, "ID switches")) == botsort.events.switches


def test_page_sweep_shows_the_pure_sweep(clean, occluded, monkeypatch):
    """Two durations instead of seven, on the detections already computed for those clips."""
    from components import tracking as ct

    known = [clean, occluded]

    def cached_detect(frames, detector, **kw):
        return next(found for clip, found in known if np.array_equal(clip.frames[30], frames[30]))

    monkeypatch.setattr(ct, "SWEEP_DURATIONS", (0, trk.CLIP_FRAMES))
    monkeypatch.setattr(trk, "detect_frames", cached_detect)
    expected = trk.occlusion_sweep(0, (0, trk.CLIP_FRAMES), detector=None, x=0.5, width=0.5)
    at = _page()
    at.button(key="track.sweep_go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    text = next(c.value for c in at.caption if c.value.startswith("ID switches per duration"))
    for kind, name in trk.TRACKERS.items():
        counts = ", ".join(str(p.events.switches) for p in expected if p.tracker == kind)
        assert f"{name}: {counts}" in text, text
    assert "0 → 0 frames" in text and f"60 → {occluded[0].longest_hidden()} frames" in text
    assert len(at.get("vega_lite_chart")) >= 4  # timeline, latency, and the two sweep charts


def test_page_refuses_a_broken_upload_with_a_message(trained_shapes_yolo):
    at = _page()
    at.radio(key="track.src").set_value("upload").run()
    assert not at.exception
    assert any("yolo11n.pt" in w.value for w in at.warning)  # offline: says what is missing
    garbage = b"\x00\x00\x00\x18ftypisom" + np.random.default_rng(2).bytes(3000)
    at.file_uploader(key="track.video").set_value(("holiday.mp4", garbage, "video/mp4")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = "\n".join(e.value for e in at.error).replace("\\", "")
    assert "holiday.mp4" in errors and "could not be read" in errors
    assert not at.metric  # nothing was tracked


def test_page_tracks_an_uploaded_video_offline(trained_shapes_yolo):
    clip = trk.make_clip(1)
    data = trk.encode_video(clip.frames[:20], clip.fps)  # the page's own format, uploaded back
    at = _page()
    at.radio(key="track.src").set_value("upload").run()
    at.file_uploader(key="track.video").set_value(("shapes.webm", data, "video/webm")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="track.go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert int(_metric(at, "Track ids used")) >= 3 and _metric(at, "Frames") == "20"


def _panning_cat(n: int = 12) -> list[np.ndarray]:
    """A 320×240 window sliding across the Chelsea photo: the cat moves 8 px a frame."""
    from core.images import load_sample

    photo = load_sample("chelsea").work
    return [np.ascontiguousarray(photo[20:260, 8 * t:8 * t + 320]) for t in range(n)]


@pytest.mark.real_weights
def test_real_yolo_keeps_one_id_on_a_moving_cat(coco_weights_dir):
    from models.detectors import load_detector

    frames = _panning_cat()
    found = trk.detect_frames(frames, load_detector("yolo11n"))
    cat = found.categories.index("cat")
    for kind in trk.TRACKERS:
        tracks = trk.run_tracker(kind, found, frames, gmc="sparseOptFlow")
        ids = [{int(r[4]) for r in rows if int(r[6]) == cat} for rows in tracks.rows]
        assert all(len(i) == 1 for i in ids) and len(set.union(*ids)) == 1, (kind, ids)


@pytest.mark.real_weights
def test_page_tracks_an_upload_with_real_yolo(coco_weights_dir, trained_shapes_yolo):
    at = _page()
    at.radio(key="track.src").set_value("upload").run()
    assert not any("yolo11n.pt" in w.value for w in at.warning)
    at.file_uploader(key="track.video").set_value(("cat.webm", trk.encode_video(_panning_cat(), 8.0), "video/webm"))
    at.run()
    assert at.selectbox(key="track.detector").value == "yolo11n"
    at.button(key="track.go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert int(_metric(at, "Track ids used")) >= 1 and _metric(at, "Frames") == "12"
