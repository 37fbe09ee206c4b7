"""The shared sidebar: one call at the top of every page.

    ctx = lab_sidebar()          # -> LabContext(image=LabImage, device=DeviceInfo)

It owns the session's active image (sample gallery, upload or camera), the compute
device, and the sample image's mirror in the URL (``?img=coffee``). Canonical values live
in plain session-state keys (``_lab.*``) so they survive page switches, which reset
widget state; the widgets are re-seeded from them on every page.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import streamlit.delta_generator as _delta_generator

from core import devices, lan
from core.imageio import ImageDecodeError, encode_jpeg, fit_long_side
from core.images import DEFAULT_SAMPLE, SAMPLES, LabImage, from_bytes, load_sample
from core.params import Param, parse
from core.safetext import literal

# Streamlit checks once per process, on the first element, whether it runs in a REPL, by
# calling inspect.stack(): that reads the source of every frame, 0.2 s of the lab's cold
# start. The lab always runs under `streamlit run`, so the check is marked done. (A private
# flag: tests/test_pages.py::test_home_imports_nothing_heavy fails if a Streamlit upgrade renames it.)
if hasattr(_delta_generator, "_use_warning_has_been_displayed"):
    _delta_generator._use_warning_has_been_displayed = True

SOURCES = ("Sample photo", "Upload", "Camera")
# Every type the decoder reads, plus HEIC/HEIF so an iPhone photo gets the decoder's advice
# ("convert it to JPEG") instead of the uploader's bare "file type not allowed".
UPLOAD_TYPES = ["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "avif", "heic", "heif"]
IMG_PARAM = Param(default=DEFAULT_SAMPLE, kind=str, choices=tuple(SAMPLES))

_IMAGE, _SAMPLE, _SOURCE, _DEVICE = "_lab.image", "_lab.sample", "_lab.source", "_lab.device"
_ERROR, _SEEN = "_lab.error", "_lab.seen_file"
THUMB_LONG_SIDE = 640  # the sidebar preview: twice its on-screen width, for sharp HiDPI screens


@dataclass(frozen=True)
class LabContext:
    image: LabImage
    device: devices.DeviceInfo


@st.cache_resource(max_entries=len(SAMPLES), show_spinner=False)
def _sample(name: str) -> LabImage:
    return load_sample(name)


@st.cache_data(max_entries=64, show_spinner=False)
def _thumbnail(digest: str, _image: LabImage) -> bytes:
    """The sidebar preview of an image as JPEG, encoded once per image instead of every rerun
    (and a fraction of the bytes on a classroom's Wi-Fi)."""
    return encode_jpeg(fit_long_side(_image.display, THUMB_LONG_SIDE))


@st.cache_resource(show_spinner=False)
def _devices() -> dict[str, devices.DeviceInfo]:
    return devices.available()


def _init_state() -> None:
    ss = st.session_state
    if _SAMPLE not in ss:
        name, notice = parse(st.query_params.get("img"), IMG_PARAM)
        if notice:
            st.toast(f"Link parameter `img`: {notice}", icon="🔗")
        ss[_SAMPLE] = name
    ss.setdefault(_SOURCE, SOURCES[0])
    ss.setdefault(_DEVICE, "auto")
    if _IMAGE not in ss:
        ss[_IMAGE] = _sample(ss[_SAMPLE])


def _copy(widget_key: str, canonical: str):
    def cb():
        st.session_state[canonical] = st.session_state[widget_key]

    return cb


def _take(file, source: str) -> None:
    """Decode a new upload/camera shot; on failure keep the previous image and say why."""
    if file is None or st.session_state.get(_SEEN) == file.file_id:
        return
    st.session_state[_SEEN] = file.file_id
    try:
        st.session_state[_IMAGE] = from_bytes(file.getvalue(), name=file.name, source=source)
        st.session_state[_ERROR] = None
    except ImageDecodeError as err:
        st.session_state[_ERROR] = f"{literal(file.name)}: {err} The previous image stays active."


def camera_blocked_at() -> str | None:
    """The page's URL when the browser will refuse the camera there (plain http:// on a LAN
    address), else None: a secure context, or unknown (no URL from the browser: try the widget)."""
    url = lan.browser_url(st.context.url, st.context.headers)
    return url if url is not None and not lan.is_secure_context(url) else None


def camera_advice(url: str) -> str:
    """Why the camera cannot work on ``url`` and what to do instead (the addresses in code
    spans: no link, and copied without the word joiners core.safetext.literal would add)."""
    return (
        "**The camera needs a secure page.** Browsers allow it only on `https://` pages (or on "
        f"`http://localhost`, on the lab's own computer); this page is `{lan.origin(url)}`.\n\n"
        "- Ask your teacher to start the lab with `scripts/run.sh --https`, then open "
        f"**`{lan.https_url(url)}`** and accept the browser's warning about its self-signed "
        "certificate (Advanced → Proceed).\n"
        "- Or take a photo with your phone's or laptop's camera app and choose **Upload**."
    )


def _image_section() -> LabImage:
    ss = st.session_state
    ss["lab.source"] = ss[_SOURCE]
    source = st.radio(
        "Image source", SOURCES, key="lab.source", horizontal=True, on_change=_copy("lab.source", _SOURCE)
    )
    if source == "Sample photo":
        ss["lab.sample"] = ss[_SAMPLE]
        st.selectbox(
            "Sample",
            list(SAMPLES),
            key="lab.sample",
            format_func=lambda k: SAMPLES[k][0],
            on_change=_copy("lab.sample", _SAMPLE),
        )
        image = ss[_IMAGE]
        if image.source != "sample" or image.name != ss[_SAMPLE]:
            ss[_IMAGE] = _sample(ss[_SAMPLE])
            ss[_ERROR] = None
    elif source == "Upload":
        _take(st.file_uploader("Your image", type=UPLOAD_TYPES, key="lab.upload"), "upload")
    else:
        blocked = camera_blocked_at()
        if blocked:
            st.info(camera_advice(blocked), icon=":material/no_photography:")
        else:
            _take(st.camera_input("Take a photo", key="lab.camera"), "camera")
    if ss.get(_ERROR):
        st.error(ss[_ERROR], icon="🖼️")
    image = ss[_IMAGE]
    if image.source == "sample":
        st.query_params["img"] = image.name
    elif "img" in st.query_params:
        del st.query_params["img"]
    w, h = image.original_size
    st.image(_thumbnail(image.digest, image), width="stretch")
    st.caption(f"Active: {literal(image.title)} · {w}×{h}")
    for note in image.notes:
        st.caption(note)
    return image


def _device_section() -> devices.DeviceInfo:
    found = _devices()
    ss = st.session_state
    ss["lab.device"] = ss[_DEVICE]
    choice = st.selectbox(
        "Device",
        devices.CHOICES,
        key="lab.device",
        format_func=lambda c: c if c == "auto" or c in found else f"{c} (not available)",
        on_change=_copy("lab.device", _DEVICE),
    )
    resolved = devices.resolve(choice, found)
    if resolved.notice:
        st.warning(resolved.notice)
    st.caption(f"Computing on **{resolved.device.name}**")
    return resolved.device


def lab_sidebar() -> LabContext:
    """Render the shared sidebar and return the active image and device."""
    _init_state()
    with st.sidebar:
        image = _image_section()
        st.divider()
        device = _device_section()
    return LabContext(image=image, device=device)


def current_device_name() -> str:
    """The device the session would use (for Home), without rendering anything."""
    _init_state()
    found = _devices()
    return devices.resolve(st.session_state[_DEVICE], found).device.name
