"""Camera on a classroom LAN (core.lan, the sidebar's camera, scripts/run.sh --https).

* ``is_secure_context`` decides as browsers do where the camera may run (https anywhere,
  http only on loopback), table-driven;
* the certificate maker's subjectAltName entries cover the addresses asked for (read back with
  ``openssl x509 -text``), its key is private and matches, and it is remade when the machine's
  addresses change or it nears expiry;
* the sidebar shows the explanation instead of a dead camera widget on http://<LAN address>,
  and the widget where the page is secure or its URL unknown (AppTest has none);
* ``scripts/run.sh --https [CERT KEY]`` hands Streamlit the certificate options and passes
  every other argument through (with stand-ins for setup.sh and Streamlit).

The real HTTPS server with a fake camera in Chromium is in tests/test_lan_browser.py.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import lan

ROOT = Path(__file__).resolve().parent.parent
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


@pytest.mark.parametrize("url, secure", [
    ("https://192.0.2.2:8501/", True),
    ("HTTPS://teacher-laptop.local:8501/Object_detection", True),
    ("https://[fd00::2]:8501/", True),
    ("wss://192.0.2.2:8501/_stcore/stream", True),
    ("http://localhost:8501/", True),
    ("http://LOCALHOST:8501", True),
    ("http://localhost.:8501/", True),
    ("http://lab.localhost:8501/", True),
    ("http://127.0.0.1:8501/", True),
    ("http://127.1.2.3:8501/", True),
    ("http://[::1]:8501/", True),
    ("ws://127.0.0.1:8501/_stcore/stream", True),
    ("http://192.0.2.2:8501/", False),
    ("http://10.0.0.7/", False),
    ("http://[fd00::2]:8501/", False),
    ("http://teacher-laptop.local:8501/", False),
    ("http://localhost.example.com:8501/", False),
    ("http://128.0.0.1:8501/", False),
    ("http://0.0.0.0:8501/", False),
    ("http://[::ffff:192.0.2.2]:8501/", False),
    ("ftp://localhost/", False),
    ("localhost:8501", False),
    ("", False),
    ("https://", False),
    ("http://[fd00::2:8501/", False),  # does not parse
])
def test_is_secure_context(url, secure):
    assert lan.is_secure_context(url) is secure


@pytest.mark.parametrize("url, headers, found", [
    ("http://192.0.2.2:8501/", {"Origin": "https://x"}, "http://192.0.2.2:8501/"),
    (None, {"Host": "192.0.2.2:8501", "Origin": "http://192.0.2.2:8501"}, "http://192.0.2.2:8501"),
    ("", {"origin": "https://192.0.2.2:8501"}, "https://192.0.2.2:8501"),
    (None, {"Origin": "null"}, None),
    (None, {"Host": "192.0.2.2:8501"}, None),  # a Host alone does not tell the scheme
    (None, None, None),
])
def test_browser_url_falls_back_to_the_origin_header(url, headers, found):
    assert lan.browser_url(url, headers) == found


def test_origin_and_https_url():
    assert lan.origin("http://192.0.2.2:8501/Object_detection?img=coffee") == "http://192.0.2.2:8501"
    assert lan.https_url("http://192.0.2.2:8501/Object_detection?img=coffee") == "https://192.0.2.2:8501/"
    assert lan.https_url("http://[fd00::2]:8600") == "https://[fd00::2]:8600/"
    assert lan.origin("HTTP://[fd00::2]:8501/") == "http://[fd00::2]:8501"
    for odd in ("http://[bad", "http://x`y:8501/", "http://user:pw@192.0.2.2:8501/", "javascript:alert(1)", ""):
        assert lan.origin(odd) == "http://<address>", odd
        assert lan.https_url(odd) == "https://<address>:8501/", odd


def test_certificate_names():
    names = lan.certificate_names(["192.0.2.2", "fd00:0::2", "192.0.2.2", "Lab-PC.example.org"], "Teacher-Laptop")
    assert names == ["DNS:localhost", "IP:127.0.0.1", "IP:::1", "DNS:teacher-laptop", "DNS:teacher-laptop.local",
                     "IP:192.0.2.2", "IP:fd00::2", "DNS:lab-pc.example.org"]
    assert lan.certificate_names([], "localhost") == list(lan.ALWAYS)
    assert lan.certificate_names([], "lab.school.example") == [*lan.ALWAYS, "DNS:lab.school.example"]
    with pytest.raises(ValueError):
        lan.certificate_names(["not an address"])


def test_lan_addresses_are_reachable_ones():
    found = lan.lan_addresses()
    assert all(lan._usable(a) for a in found)
    assert not any(a.startswith(("127.", "fe80")) or a == "::1" for a in found)


def _sans(cert: Path) -> str:
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    return re.search(r"Subject Alternative Name:[^\n]*\n\s*([^\n]*)", text).group(1)


def _public_key(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


@needs_openssl
def test_make_certificate_covers_the_addresses_asked_for(tmp_path):
    cert, key = tmp_path / "c" / "lab.crt", tmp_path / "c" / "lab.key"
    names = lan.certificate_names(["192.0.2.2", "fd00::2"], "teacher")
    lan.make_certificate(cert, key, names)
    raw = _sans(cert)  # as openssl prints it
    for entry in ("DNS:localhost", "IP Address:127.0.0.1", "DNS:teacher", "DNS:teacher.local", "IP Address:192.0.2.2"):
        assert entry in raw, raw
    assert re.search(r"IP Address:FD00:0:0:0:0:0:0:2\b", raw, re.I) and re.search(r"IP Address:0:0:0:0:0:0:0:1\b", raw)
    assert lan.names_in(cert) == set(names)
    text = lan.certificate_text(cert)
    assert "CA:FALSE" in text and "TLS Web Server Authentication" in text
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert _public_key("x509", "-in", str(cert), "-noout", "-pubkey") == _public_key("pkey", "-in", str(key), "-pubout")
    assert not lan.expires_within(cert, 365 * 24 * 3600)
    assert not list(tmp_path.glob("c/*.tmp"))


@needs_openssl
def test_ensure_certificate_reuses_or_remakes(tmp_path):
    cert, key, made = lan.ensure_certificate(tmp_path, ["192.0.2.2"], "teacher")
    assert made and cert == tmp_path / lan.CERT_NAME and key == tmp_path / lan.KEY_NAME
    before = cert.read_bytes()
    assert lan.ensure_certificate(tmp_path, ["192.0.2.2"], "teacher")[2] is False  # covers it: kept
    assert cert.read_bytes() == before
    _, _, made = lan.ensure_certificate(tmp_path, ["192.0.2.2", "198.51.100.7"], "teacher")  # a new address
    assert made and "IP:198.51.100.7" in lan.names_in(cert)
    lan.make_certificate(cert, key, lan.certificate_names(["192.0.2.2"], "teacher"), days=10)  # near expiry
    assert lan.expires_within(cert, lan.RENEW_WITHIN_S)
    assert lan.ensure_certificate(tmp_path, ["192.0.2.2"], "teacher")[2] is True
    cert.write_text("garbage")
    assert lan.ensure_certificate(tmp_path, ["192.0.2.2"], "teacher")[2] is True
    assert "IP:192.0.2.2" in lan.names_in(cert)


@needs_openssl
def test_command_line(tmp_path, capsys):
    assert lan.main(["cert", str(tmp_path / "certs")]) == 0
    out, err = capsys.readouterr()
    cert, key = out.splitlines()
    assert Path(cert).is_file() and Path(key).is_file() and "made the self-signed certificate" in err
    assert "localhost" in err and all(str(ipaddress.ip_address(a)) in err for a in lan.lan_addresses())
    assert lan.main(["check", cert, key]) == 0 and capsys.readouterr().out.splitlines() == [cert, key]
    assert lan.main(["check", cert, str(tmp_path / "missing.key")]) == 1
    assert "no such readable file" in capsys.readouterr().err
    assert lan.main(["check", key, key]) == 1  # a key is not a certificate
    assert lan.main(["frobnicate"]) == 2


# --------------------------------------------------------------------------- the sidebar


def _sidebar_script():
    import streamlit as st

    from components.sidebar import lab_sidebar

    st.session_state.setdefault("_lab.source", "Camera")
    lab_sidebar()


def test_camera_on_plain_http_lan_explains_instead_of_a_dead_widget(monkeypatch):
    monkeypatch.setattr(lan, "browser_url", lambda url, headers=None: "http://192.0.2.2:8501/Object_detection")
    at = AppTest.from_function(_sidebar_script, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("camera_input")
    [info] = [i.value for i in at.sidebar.info]
    assert "camera needs a secure page" in info
    assert "this page is `http://192.0.2.2:8501`." in info
    assert "`scripts/run.sh --https`" in info and "**`https://192.0.2.2:8501/`**" in info and "**Upload**" in info
    assert any(c.value.startswith("Active:") for c in at.sidebar.caption)  # the previous image stays


@pytest.mark.parametrize("url", [None, "https://192.0.2.2:8501/", "http://localhost:8501/"])
def test_camera_widget_where_it_can_work_or_the_url_is_unknown(monkeypatch, url):
    if url is not None:
        monkeypatch.setattr(lan, "browser_url", lambda _url, headers=None: url)
    at = AppTest.from_function(_sidebar_script, default_timeout=120).run()  # AppTest: st.context.url is None
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("camera_input")) == 1
    assert not at.sidebar.info


# --------------------------------------------------------------------------- scripts/run.sh


def _fake_checkout(tmp: Path) -> Path:
    """scripts/run.sh in a copy of the checkout whose setup.sh does nothing and whose
    ``.venv/bin/python -m streamlit`` prints its arguments (``-m core.lan`` is the real one)."""
    (tmp / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run.sh", tmp / "scripts" / "run.sh")
    (tmp / "scripts" / "setup.sh").write_text("exit 0\n")
    (tmp / "core").symlink_to(ROOT / "core")
    python = tmp / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1 $2" = "-m streamlit" ]; then shift 2; printf "%s\\n" "$@"; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    return tmp / "scripts" / "run.sh"


def _run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=120,
                          cwd="/", env={**os.environ, "PYTHONPATH": ""})


@needs_openssl
def test_run_sh_https(tmp_path):
    script = _fake_checkout(tmp_path)
    plain = _run(script, "--server.port", "8600")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.splitlines() == ["run", "Home.py", "--server.port", "8600"]
    assert not (tmp_path / ".certs").exists()

    made = _run(script, "--server.port", "8600", "--https", "--server.headless", "true")
    assert made.returncode == 0, made.stderr
    cert, key = tmp_path / ".certs" / lan.CERT_NAME, tmp_path / ".certs" / lan.KEY_NAME
    assert made.stdout.splitlines() == ["run", "Home.py", "--server.sslCertFile", ".certs/cvlab.crt",
                                        "--server.sslKeyFile", ".certs/cvlab.key",
                                        "--server.port", "8600", "--server.headless", "true"]
    assert cert.is_file() and key.is_file() and "Network URL" in made.stderr
    assert all(f"IP:{ipaddress.ip_address(a)}" in lan.names_in(cert) for a in lan.lan_addresses())

    own = tmp_path / "my certs"
    lan.make_certificate(own / "a.crt", own / "a.key", ["DNS:lab.example"])
    mine = _run(script, "--https", str(own / "a.crt"), str(own / "a.key"), "--server.port", "8600")
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout.splitlines() == ["run", "Home.py", "--server.sslCertFile", str(own / "a.crt"),
                                        "--server.sslKeyFile", str(own / "a.key"), "--server.port", "8600"]

    assert _run(script, "--https", str(own / "a.crt")).returncode == 2  # CERT without KEY
    missing = _run(script, "--https", str(own / "a.crt"), str(own / "nope.key"))
    assert missing.returncode == 1 and "no such readable file" in missing.stderr
