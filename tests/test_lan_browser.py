"""The camera on a classroom LAN, end to end: Chromium with a fake camera against the lab served
on this machine's LAN address (not loopback, where http:// would count as secure).

* over HTTPS (a certificate from core.lan for that address; Chromium told to accept it, as a
  student clicks through the warning), picking "Camera" shows the widget, the fake camera's
  photo is taken and becomes the active image (its name: ``camera-input-<time>.jpg``);
* over plain http on the same address, picking "Camera" shows why the camera cannot work there
  and what to do, and no camera widget.

Screenshots of the sidebar land in test-artifacts/ (``lan_camera_https.png``,
``lan_camera_http.png``). About 20 s on 2 CPUs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import shutil
import socket
from pathlib import Path

import pytest

from benchmark import driver
from benchmark.driver import active_caption, open_url, rerun, sidebar
from core import lan

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
EXPECT_MS = 15_000
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", "--ignore-certificate-errors"]

if not driver.chromium_available():
    pytest.skip(f"Chromium not found at {driver.CHROMIUM!r} (set CHROMIUM=/path/to/chromium)", allow_module_level=True)
if shutil.which("openssl") is None:
    pytest.skip("openssl is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
expect = sync_api.expect


def _lan_ipv4() -> str | None:
    for address in lan.lan_addresses():
        if ipaddress.ip_address(address).version == 4:
            try:  # it must be bindable here (not a NAT's public address)
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind((address, 0))
                return address
            except OSError:
                continue
    return None


@pytest.fixture(scope="module")
def address():
    found = _lan_ipv4()
    if found is None:
        pytest.skip("this machine has no non-loopback IPv4 address (hostname -I)")
    return found


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = driver.launch_chromium(pw, extra_args=FAKE_CAMERA)
        try:
            yield chromium
        finally:
            chromium.close()


def _server(address: str, name: str, cert=None) -> driver.AppServer:
    return driver.AppServer(ARTIFACTS / f"streamlit-{name}.log", env={"CVLAB_OFFLINE": "1", "YOLO_OFFLINE": "1"},
                            address=address, cert=cert)


def _pick_camera(page) -> None:
    radio = sidebar(page).locator('[data-testid="stRadio"] label').filter(has_text=re.compile(r"^\s*Camera\s*$"))
    rerun(page, radio.click)


@contextlib.contextmanager
def _diagnosed(page, app: driver.AppServer, name: str):
    """On failure: a full-page screenshot FAILED-<name>.png and the server log's tail."""
    try:
        yield
    except Exception as exc:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"FAILED-{name}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - the failure itself matters more
            pass
        raise AssertionError(f"{exc}\n{app.log_tail(30)}") from exc
    finally:
        page.context.close()


def _shot(page, name: str) -> None:
    """The sidebar's own content (image source, preview, device), in a viewport tall enough for all of it."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": driver.VIEWPORT["width"], "height": 2000})
    sidebar(page).locator('[data-testid="stSidebarUserContent"]').screenshot(path=str(ARTIFACTS / name))


def test_camera_over_https_on_the_lan_address(browser, address, tmp_path):
    cert, key, _ = lan.ensure_certificate(tmp_path, [address], socket.gethostname())
    with _server(address, "https", cert=(cert, key)) as app:
        assert app.base.startswith(f"https://{address}:")
        page = driver.new_page(browser)
        with _diagnosed(page, app, "lan_camera_https"):
            open_url(page, app.base + "/")
            assert page.evaluate("() => window.isSecureContext") is True
            expect(active_caption(page)).to_contain_text("Active: Astronaut", timeout=EXPECT_MS)
            _pick_camera(page)
            side = sidebar(page)
            expect(side.locator('[data-testid="stCameraInput"]')).to_have_count(1, timeout=EXPECT_MS)
            expect(side.get_by_text("camera needs a secure page")).to_have_count(0)
            take = side.get_by_role("button", name="Take Photo")
            expect(take).to_be_enabled(timeout=EXPECT_MS)  # enabled once the (fake) camera streams
            rerun(page, take.click)
            expect(active_caption(page)).to_contain_text(re.compile(r"Active: camera-input-\S+\.jpg · \d+×\d+"),
                                                         timeout=EXPECT_MS)
            expect(page.locator('[data-testid="stException"]')).to_have_count(0)
            _shot(page, "lan_camera_https.png")


def test_camera_over_plain_http_on_the_lan_address_explains(browser, address):
    with _server(address, "http") as app:
        assert app.base == f"http://{address}:{app.port}"
        page = driver.new_page(browser)
        with _diagnosed(page, app, "lan_camera_http"):
            open_url(page, app.base + "/")
            assert page.evaluate("() => window.isSecureContext") is False
            _pick_camera(page)
            side = sidebar(page)
            advice = side.locator('[data-testid="stAlertContentInfo"]')
            expect(advice).to_contain_text("camera needs a secure page", timeout=EXPECT_MS)
            expect(advice).to_contain_text(f"this page is http://{address}:{app.port}")
            expect(advice).to_contain_text("scripts/run.sh --https")
            expect(advice).to_contain_text(f"https://{address}:{app.port}/")
            expect(side.locator('[data-testid="stCameraInput"]')).to_have_count(0)
            expect(active_caption(page)).to_contain_text("Active: Astronaut")  # the image stays
            _shot(page, "lan_camera_http.png")
