"""The registry describes each model once and correctly; loading is offline-safe."""

from __future__ import annotations

import urllib.error

import pytest

from models import prefetch, registry

TORCHVISION = [s for s in registry.REGISTRY.values() if s.source == "torchvision"]
REQUIRED = {"yolo11n", "yolo11n-seg", "fasterrcnn_mobilenet_v3_large_fpn", "maskrcnn_resnet50_fpn",
            "deeplabv3_mobilenet_v3_large", "resnet18", "mobilenet_v3_large"}


def test_every_model_the_pages_need_is_registered():
    assert REQUIRED <= set(registry.REGISTRY)


@pytest.mark.parametrize("spec", TORCHVISION, ids=lambda s: s.name)
def test_torchvision_specs_match_torchvisions_own_metadata(spec):
    weights = registry._torchvision_weights(spec)
    assert weights.url == spec.url and weights.url.endswith(spec.file)
    assert spec.hash_prefix in spec.file
    assert weights.meta["_file_size"] == pytest.approx(spec.size_mb, abs=0.6)
    assert registry.categories(spec.name) == tuple(weights.meta["categories"])


def test_coco80_is_the_yolo_class_list():
    cats = registry.categories("yolo11n")
    assert len(cats) == 80 and cats[0] == "person" and cats[15] == "cat" and cats[41] == "cup"


@pytest.fixture
def empty_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("CVLAB_WEIGHTS", str(tmp_path))
    return tmp_path


def test_offline_error_says_how_to_fix(empty_weights):
    with pytest.raises(registry.WeightsUnavailable) as info:
        registry.ensure_weights("resnet18")
    msg = str(info.value)
    for needle in ("resnet18-f37072fd.pth", "python -m models.prefetch --only resnet18",
                   registry.get_spec("resnet18").url, str(empty_weights), "CVLAB_WEIGHTS"):
        assert needle in msg


def test_failed_download_leaves_no_partial_file(empty_weights, monkeypatch):
    monkeypatch.delenv("CVLAB_OFFLINE")

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(registry.urllib.request, "urlopen", refuse)
    with pytest.raises(registry.WeightsUnavailable, match="download failed"):
        registry.ensure_weights("yolo11n")
    assert list(empty_weights.iterdir()) == []


def test_download_with_wrong_checksum_is_removed(empty_weights, monkeypatch):
    monkeypatch.delenv("CVLAB_OFFLINE")

    def fake_download(url, dest, progress, timeout):
        dest.write_bytes(b"not the real weights")

    monkeypatch.setattr(registry, "_download", fake_download)
    with pytest.raises(registry.ChecksumMismatch):
        registry.ensure_weights("resnet18")
    assert not registry.get_spec("resnet18").path.exists()


def test_local_file_is_used_without_network(empty_weights, monkeypatch):
    (empty_weights / "yolo11n.pt").write_bytes(b"x")
    monkeypatch.setattr(registry, "_download", lambda *a, **k: pytest.fail("must not download"))
    assert registry.ensure_weights("yolo11n") == empty_weights / "yolo11n.pt"


def test_build_torchvision_loads_weights_only(empty_weights):
    """A state dict saved by us round-trips through the registry's loader (weights_only)."""
    import torch
    import torchvision

    model = torchvision.models.mobilenet_v3_large(weights=None)
    torch.save(model.state_dict(), empty_weights / registry.get_spec("mobilenet_v3_large").file)
    loaded = registry.build_torchvision("mobilenet_v3_large")
    assert not loaded.training
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


def test_torchvision_loader_refuses_pickled_objects(empty_weights):
    import torch

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, empty_weights / registry.get_spec("resnet18").file)
    with pytest.raises(Exception, match="(?i)weights.only|unsupported|global"):
        registry.build_torchvision("resnet18")


def test_prefetch_list_and_offline_exit_code(empty_weights, capsys):
    assert prefetch.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "yolo11n" in out and "missing" in out
    assert prefetch.main(["--only", "yolo11n"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_download_is_atomic_and_world_readable(empty_weights, monkeypatch):
    """A finished download appears in one rename, readable by a server running as another user."""
    import io
    import stat

    monkeypatch.delenv("CVLAB_OFFLINE")
    monkeypatch.setattr(registry, "verify", lambda spec, path=None: None)

    class Response(io.BytesIO):
        headers = {"Content-Length": "5"}

    monkeypatch.setattr(registry.urllib.request, "urlopen", lambda url, timeout: Response(b"bytes"))
    path = registry.ensure_weights("yolo11n")
    assert path.read_bytes() == b"bytes"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in empty_weights.iterdir()] == ["yolo11n.pt"]


def test_for_inference_changes_layout_not_results():
    """Channels-last weights, eval mode, and the same outputs (up to float rounding)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3)).train()
    x = torch.rand(2, 3, 32, 32)
    expected = net.eval()(x).detach()
    served = registry.for_inference(net.train())
    assert not served.training
    assert served[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert torch.allclose(served(x), expected, atol=1e-5)


def test_importing_ultralytics_first_keeps_every_core_for_torch():
    """Ultralytics sets OMP_NUM_THREADS=1 when it is unset; if it imports torch first, torch
    would then run every model on one core. models.ultra keeps the cores."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from core.devices import cpu_threads

    code = ("from models.ultra import ultralytics; ultralytics(); import torch; "
            "print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent, env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    assert int(out.stdout.strip().splitlines()[-1]) == cpu_threads()
