"""The deployment files say what Community Cloud, Docker and scripts/setup.sh need, unchanged.

What cannot be run here (no Docker daemon, no route to download.pytorch.org) is checked as
text; what can be (the OpenCV pair, the offline fallback of setup.sh) is checked for real."""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import requirements as reqs  # noqa: E402  (scripts/requirements.py, standard library only)

REQ = (ROOT / "requirements.txt").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_cloud_gets_cpu_torch_pinned_exactly():
    pins = _pins(REQ)
    assert f"--extra-index-url {reqs.CPU_INDEX}" in REQ.splitlines()
    assert pins["torch"].endswith("+cpu") and pins["torchvision"].endswith("+cpu")
    assert re.fullmatch(r"\d+\.\d+\.\d+\+cpu", pins["torch"]), pins["torch"]


def test_the_installed_torch_is_the_pinned_version():
    pins = _pins(REQ)
    for name in ("torch", "torchvision"):
        assert md.version(name).split("+")[0] == pins[name].split("+")[0], name


@pytest.mark.parametrize("line, expected", [
    ("torch==2.14.1+cpu", "torch==2.14.1"),
    ("torchvision==0.29.1+cpu  # comment", "torchvision==0.29.1  # comment"),
    ("--extra-index-url https://download.pytorch.org/whl/cpu", None),
    ("--extra-index-url https://download.pytorch.org/whl/cpu/", None),
    ("--extra-index-url https://example.org/simple", "--extra-index-url https://example.org/simple"),
    ("numpy>=1.26", "numpy>=1.26"),
    ("opencv-python==5.1.0.95", "opencv-python==5.1.0.95"),
    ("# torch==2.14.1+cpu in a comment stays", "# torch==2.14.1+cpu in a comment stays"),
])
def test_offline_fallback_keeps_versions_and_drops_only_the_cpu_index(line, expected):
    text, notes = reqs.without_index(line + "\n")
    assert text.strip() == (expected or "")
    assert bool(notes) == (expected != line)


def test_offline_fallback_rewrites_included_files_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reqs, "index_reachable", lambda *a, **k: False)
    assert reqs.main(["requirements.py", str(ROOT / "requirements-dev.txt"), str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    target = Path(out.strip())
    assert target.parent == tmp_path and target.name == "requirements-dev.txt"
    assert "-r requirements.txt" in target.read_text()
    copied = (tmp_path / "requirements.txt").read_text()
    assert reqs.CPU_INDEX not in copied and "+cpu" not in copied
    assert _pins(copied)["torch"] == _pins(REQ)["torch"].split("+")[0]
    assert "cannot be reached" in err and "torch==" in err  # never silently


def test_reachable_index_installs_the_file_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reqs, "index_reachable", lambda *a, **k: True)
    reqs.main(["requirements.py", str(ROOT / "requirements.txt"), str(tmp_path)])
    assert Path(capsys.readouterr().out.strip()) == ROOT / "requirements.txt"
    assert not any(tmp_path.iterdir())


def test_one_opencv_version_for_both_wheels_and_it_imports():
    pins = _pins(REQ)
    assert pins["opencv-python"] == pins["opencv-python-headless"]
    for name in ("opencv-python", "opencv-python-headless"):
        assert md.version(name) == pins[name], f"{name} installed {md.version(name)}, pinned {pins[name]}"
    out = subprocess.run([sys.executable, "-c", "import cv2, numpy as n; "
                          "print(cv2.__version__, cv2.imencode('.png', n.zeros((4, 4, 3), n.uint8))[0])"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert pins["opencv-python"].startswith(out[0]) and out[1] == "True"


def test_packages_txt_has_what_opencv_python_links_against():
    wanted = {"libgl1", "libglib2.0-0"}
    assert wanted <= set((ROOT / "packages.txt").read_text().split())


def test_secrets_and_local_weights_stay_out_of_git_and_docker():
    for name in (".gitignore", ".dockerignore"):
        entries = {ln.strip().rstrip("/") for ln in (ROOT / name).read_text().splitlines()}
        assert ".streamlit/secrets.toml" in entries, name
        assert "weights" in entries, name
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ".streamlit/secrets.toml" not in tracked


def test_dockerfile_base_pinned_init_process_port_following_health_check_no_training():
    base = re.search(r"^FROM\s+(\S+)", DOCKERFILE, re.M).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base  # exact Python and Debian release
    assert re.search(r'^ENTRYPOINT \["/usr/bin/tini", "--"\]', DOCKERFILE, re.M)
    assert "tini" in re.search(r"apt-get install[^\n]*", DOCKERFILE).group(0)
    health = DOCKERFILE[DOCKERFILE.index("HEALTHCHECK"):DOCKERFILE.index("ENTRYPOINT")]
    assert "STREAMLIT_SERVER_PORT" in health and "127.0.0.1:8501" not in health
    cmd = re.search(r"^CMD (.*)$", DOCKERFILE, re.M).group(1)
    assert "--server.port" not in cmd  # the port comes from STREAMLIT_SERVER_PORT, read by both
    assert "RUN pip install -r requirements.txt" in DOCKERFILE  # the file itself, as Cloud reads it
    assert "models.train" not in DOCKERFILE and "uninstall" not in DOCKERFILE


def test_streamlit_run_takes_its_port_from_the_environment(tmp_path):
    """What the Dockerfile's CMD and health check rely on: `streamlit run` (click's
    STREAMLIT_ prefix) listens on STREAMLIT_SERVER_PORT and the health check finds it there."""
    import os
    import time

    from benchmark import driver

    port = driver.free_port()
    env = {**os.environ, "STREAMLIT_SERVER_PORT": str(port), "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",
           "STREAMLIT_SERVER_HEADLESS": "true"}
    with open(tmp_path / "server.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "Home.py"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not driver.healthy(f"http://127.0.0.1:{port}/_stcore/health"):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
        check = re.search(r'CMD python -c "(.*)"\n', DOCKERFILE).group(1)
        assert subprocess.run([sys.executable, "-c", check], env=env, timeout=30).returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=15)
