"""Safety rules checked on the source itself, and the per-session temporary space.

Nothing a user sends is unpickled, rendered as HTML, or fetched; uploads are bounded by one
limit stated in config, decoders and README; a user's bytes on disk live only inside the
session's own folder, only while a call needs them."""

from __future__ import annotations

import ast
import gc
import re
import stat
import tomllib
from pathlib import Path

import pytest

from core import imageio, video
from core.safetext import literal
from core.tempspace import SessionSpace

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("Home.py", "pages", "components", "core", "models", "benchmark")
                 for p in ([ROOT / d] if d.endswith(".py") else (ROOT / d).rglob("*.py")))
# torch.load(..., weights_only=False) is allowed only here, on a file this process just wrote.
PICKLE_OK = {("models/shapes_yolo.py", "torch.load")}  # pack_ultralytics: the last.pt our own trainer just wrote
FETCH_OK = {"models/registry.py", "benchmark/driver.py"}  # fixed weight URLs; the loopback health check


def _calls(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_sources_were_found():
    assert len(SOURCES) > 20 and ROOT / "Home.py" in SOURCES


def test_nothing_is_unpickled_or_evaluated():
    bad = []
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        for call, name in _calls(path):
            if name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.loads", "eval", "exec",
                        "joblib.load", "dill.load"):
                bad.append(f"{rel}:{call.lineno} {name}")
            if name in ("numpy.load", "np.load"):  # only plain arrays: allow_pickle=False, spelled out
                kw = {k.arg: k.value for k in call.keywords}
                if not (isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is False):
                    bad.append(f"{rel}:{call.lineno} {name} without allow_pickle=False")
            if name == "torch.load" and (rel, name) not in PICKLE_OK:
                kw = {k.arg: k.value for k in call.keywords}
                if not (isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True):
                    bad.append(f"{rel}:{call.lineno} torch.load without weights_only=True")
    assert not bad, bad


def test_html_is_only_ever_rendered_from_constant_text():
    bad = []
    for path in SOURCES:
        for call, name in _calls(path):
            for k in call.keywords:
                if k.arg == "unsafe_allow_html" and not (isinstance(k.value, ast.Constant) and not k.value.value):
                    if not (call.args and isinstance(call.args[0], ast.Constant)):
                        bad.append(f"{path.relative_to(ROOT)}:{call.lineno} {name}")
    assert not bad, bad


def test_only_fixed_urls_are_fetched():
    bad = []
    for path in SOURCES:
        rel = path.relative_to(ROOT).as_posix()
        for call, name in _calls(path):
            if re.search(r"urlopen|requests\.|httpx\.|urlretrieve|download_url_to_file", name) and rel not in FETCH_OK:
                bad.append(f"{rel}:{call.lineno} {name}")
    assert not bad, bad


def test_one_upload_limit_everywhere():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    mb = config["server"]["maxUploadSize"]
    assert imageio.MAX_BYTES == video.MAX_BYTES == mb * 2**20
    assert f"{mb} MB" in (ROOT / "README.md").read_text()
    assert config["client"]["showErrorDetails"] == "none"  # no tracebacks for users


@pytest.mark.parametrize("text,shown", [
    ("cat.png", "cat\\.png"),
    ("![x](http://e/p.png)", "\\!\\[x\\]\\(http\\:\u2060//e/p\\.png\\)"),
    ("see www.e.com", "see www\u2060\\.e\\.com"),
    ("<b>bold</b>", "\\<b\\>bold\\</b\\>"),
    ("$x$ & *y*", "\\$x\\$ \\& \\*y\\*"),
    ("a\x00b\u202ec", "abc"),
    ("x" * 200, "x" * 119 + "…"),
])
def test_user_text_is_escaped_for_markdown(text, shown):
    assert literal(text) == shown


# --------------------------------------------------------------------------- temp space


def test_session_file_exists_only_inside_the_block(tmp_path):
    space = SessionSpace("alice", root=tmp_path)
    with space.file(".mp4", b"data") as path:
        assert path.read_bytes() == b"data" and path.parent == space.path
        assert stat.S_IMODE(space.path.stat().st_mode) == 0o700
    assert not path.exists() and space.files() == []


def test_session_file_is_removed_when_the_call_fails(tmp_path):
    space = SessionSpace("alice", root=tmp_path)
    with pytest.raises(RuntimeError):
        with space.file(".avi", b"x"):
            raise RuntimeError("decoder failed")
    assert space.files() == []


@pytest.mark.parametrize("suffix", ["../../etc/passwd", "/abs", ".MP4", "", "..", ".x" * 50, ".\x00mp4"])
def test_suffix_cannot_escape_the_folder(tmp_path, suffix):
    space = SessionSpace("alice", root=tmp_path)
    with space.file(suffix, b"x") as path:
        assert path.parent == space.path and re.fullmatch(r"\.[a-z0-9]{1,8}", path.suffix)


def test_sessions_get_separate_folders_removed_with_the_session(tmp_path):
    a, b = SessionSpace("alice", root=tmp_path), SessionSpace("bob", root=tmp_path)
    assert a.path != b.path and "alice" not in a.path.name  # the id is hashed, not shown
    with a.file(".bin", b"x"):
        pass
    folder = a.path
    assert folder.is_dir()
    del a
    gc.collect()
    assert not folder.exists()  # the session's state (and so its space) was dropped
    b.cleanup()
    b.cleanup()  # idempotent
