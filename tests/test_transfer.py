"""Transfer learning: the shapes-pretext backbone (trained on circle/square/triangle only)
transferred to star/hexagon/cross with a few labelled crops per class.

Behavioural claims: with 5 examples per class a frozen pretrained backbone + new head beats
the same network trained from scratch by a wide margin and is far above chance (1/3); the
frozen regime leaves every backbone tensor bit-identical while full fine-tuning changes
them; the same seed gives the same numbers. On real photos, EfficientNet-Lite0's frozen ImageNet
features (installed with the lab: never skipped) + a new head sort heavily augmented copies of
sample photos far better than raw pixels. Then the page itself (AppTest)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from core import transfer as tl

PAGE = "pages/19_Transfer_learning.py"


@pytest.fixture(scope="session")
def backbone():
    from models.shapes_pretext import load_shapes_pretext

    return load_shapes_pretext()


@pytest.fixture(scope="session")
def data5():
    return tl.target_data(max_shots=5, n_test=150, seed=0)


@pytest.fixture(scope="session")
def five_shot(backbone, data5):
    """Every regime once at 5 examples per class, seed 0 (one training shared by several tests)."""
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    x, y = data5.subset(5)
    runs = {r: tl.train_regime(r, backbone, x, y, data5.x_test, data5.y_test, steps=40, seed=0)
            for r in tl.REGIMES}
    return before, runs


def test_constants_match_the_pretext_model():
    from core.shapes import SHAPE_CLASSES
    from models import shapes_pretext

    assert tl.SHAPE_CLASSES == tuple(SHAPE_CLASSES)
    assert tl.SOURCE_CLASSES == shapes_pretext.SOURCE_CLASSES
    assert tl.TARGET_CLASSES == shapes_pretext.TARGET_CLASSES
    assert not set(tl.SOURCE_CLASSES) & set(tl.TARGET_CLASSES)
    assert tl.class_names(tl.TARGET_CLASSES) == ["star", "hexagon", "cross"]


def test_target_data_is_nested_balanced_and_the_test_set_is_fixed(data5):
    import torch

    x2, y2 = data5.subset(2)
    x5, y5 = data5.subset(5)
    assert x2.shape == (6, 3, 64, 64) and y2.tolist() == [0, 0, 1, 1, 2, 2]
    assert y5.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    for j in range(3):  # a larger K extends a smaller one
        assert torch.equal(x2[2 * j:2 * j + 2], x5[5 * j:5 * j + 2])
    given = tl.target_data(max_shots=5, n_test=150, seed=0, test=tl.sample_crops(tl.TARGET_CLASSES, 160,
                                                                                   seed=tl.TEST_SEED))
    assert torch.equal(given.x_test, data5.x_test) and torch.equal(given.x_train, data5.x_train)
    other = tl.target_data(max_shots=2, n_test=150, seed=1)
    assert torch.equal(other.x_test, data5.x_test) and torch.equal(other.y_test, data5.y_test)
    assert not torch.equal(other.x_train[:2], data5.x_train[:2])  # the seed draws other examples
    assert sorted(set(data5.y_test.tolist())) == [0, 1, 2]
    crop, label = tl.target_crop(4, n_test=150)
    assert crop.shape == (64, 64, 3) and label in tl.TARGET_CLASSES
    assert tl.SHAPE_CLASSES[label] == tl.class_names(tl.TARGET_CLASSES)[int(data5.y_test[4])]
    with pytest.raises(ValueError):
        data5.subset(6)


def test_frozen_backbone_beats_scratch_and_chance_with_five_examples(five_shot):
    # `python -m benchmark.spread --only transfer` (2-core AMD EPYC, seeds 0-9, AVX-512 kernels and AVX2
    # kernels: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2): 40 steps on 15 crops do not amplify rounding,
    # the two kernel paths agree to 0.001 (seed 0: identical). Seed 0: frozen 0.833, frozen - scratch 0.453,
    # finetune - scratch 0.480, frozen train accuracy 0.933; seeds 0-9: frozen 0.83-0.92, frozen - scratch
    # 0.42-0.60, finetune - scratch 0.38-0.58, train accuracy 0.93-1.00. The bars keep 0.08-0.2 of room.
    _, runs = five_shot
    frozen, scratch = runs["frozen"]["accuracy"], runs["scratch"]["accuracy"]
    assert frozen >= 0.7, frozen
    assert frozen >= scratch + 0.25, (frozen, scratch)
    assert frozen > 1 / 3 + 0.3
    assert runs["finetune"]["accuracy"] >= scratch + 0.2  # starting from pretrained weights helps too
    assert runs["frozen"]["train_accuracy"] >= 0.8  # 15 crops, 40 steps: the head fits (almost) all


def test_frozen_leaves_the_backbone_bit_identical_and_fine_tuning_changes_it(backbone, five_shot):
    import torch

    before, runs = five_shot
    after = backbone.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # neither regime touched the backbone
    assert isinstance(runs["frozen"]["model"], torch.nn.Linear)  # only a new head was trained
    tuned = runs["finetune"]["model"].features.state_dict()
    conv = [k for k in tuned if k.endswith("weight") and tuned[k].ndim == 4]
    assert len(conv) == 4
    assert all(not torch.equal(tuned[k], before[f"features.{k}"]) for k in conv)  # every conv layer moved
    # ...but stayed close to where it started (small backbone learning rate), unlike from scratch
    scratch = runs["scratch"]["model"].features.state_dict()
    rel = lambda m: float((m["0.0.weight"] - before["features.0.0.weight"]).norm() / before["features.0.0.weight"].norm())
    assert rel(tuned) < 0.5 < rel(scratch)


def test_same_seed_same_numbers_and_progress(backbone):
    recipe = tl.Recipe(shots=(1, 2), steps=6, n_test=30, seed=3)
    seen = []
    a = tl.sweep(recipe, backbone, progress=lambda f, t, partial=None: seen.append((f, t, partial)))
    b = tl.sweep(recipe, backbone)
    strip = lambda res: [{k: v for k, v in r.items() if k != "seconds"} for r in res["rows"]]
    assert strip(a) == strip(b)
    assert [(r["shots"], r["regime"]) for r in a["rows"]] == [(k, r) for k in (1, 2) for r in tl.REGIMES]
    assert seen and seen[-1][2] == a["rows"] and 0 <= seen[0][0] <= seen[-1][0] <= 1.0
    c = tl.sweep(tl.Recipe(shots=(1, 2), steps=6, n_test=30, seed=4), backbone)
    assert strip(c) != strip(a)
    table = tl.table_rows(a)
    assert [r["examples per class"] for r in table] == [1, 2] and "frozen accuracy" in table[0]


def test_sweep_stops_at_the_deadline(backbone):
    class Expired(Exception):
        pass

    class Deadline:
        calls = 0

        def check(self):
            self.calls += 1
            if self.calls > 3:
                raise Expired

    with pytest.raises(Expired):
        tl.sweep(tl.Recipe(shots=(1,), steps=50, n_test=30), backbone, deadline=Deadline())


def test_recipe_rejects_bad_values():
    with pytest.raises(ValueError):
        tl.Recipe(shots=())
    with pytest.raises(ValueError):
        tl.Recipe(shots=(0, 2))
    with pytest.raises(ValueError):
        tl.train_regime("nope", None, None, None, None, None, steps=1, seed=0)


# --- the user's own images -------------------------------------------------------------------------


def test_leave_one_out_on_separable_features_is_perfect():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 4)
    feats = rng.normal(size=(12, 8)).astype(np.float32) * 0.1
    feats[np.arange(12), labels] += 3.0
    pred = tl.loo_predictions(feats, labels, 3)
    assert pred.tolist() == labels.tolist()
    with pytest.raises(ValueError):
        tl.loo_predictions(feats[:1], labels[:1], 3)


def test_pretext_features_separate_unseen_shapes_better_than_pixels(backbone):
    """The lesson of the upload section on shapes: frozen features transfer, raw pixels do not."""
    x, y = tl.sample_crops(tl.TARGET_CLASSES, 24, seed=123)
    images = list(x)
    feats = tl.shapes_features(backbone, images)
    pixels = tl.pixel_features(images)
    assert feats.shape == (24, 64) and pixels.shape == (24, tl.PIXEL_SIDE ** 2 * 3)
    acc_feats = float((tl.loo_predictions(feats, y, 6) == y).mean())
    acc_pixels = float((tl.loo_predictions(pixels, y, 6) == y).mean())
    assert acc_feats >= 0.75 and acc_feats > acc_pixels + 0.2, (acc_feats, acc_pixels)


def test_decode_files_reports_bad_files_and_keeps_good_ones():
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((900, 600, 3), 200, np.uint8)).save(buf, format="PNG")
    images, errors = tl.decode_files([("ok.png", buf.getvalue()), ("notes.pdf", b"%PDF-1.4 hello"),
                                      ("empty.jpg", b"")])
    assert len(images) == 1 and images[0].shape == (512, 341, 3) and images[0].dtype == np.uint8
    assert [name for name, _ in errors] == ["notes.pdf", "empty.jpg"]
    assert "PDF" in errors[0][1] and "empty" in errors[1][1]


def test_upload_problems():
    assert tl.upload_problems([2, 3], ["cats", "dogs"]) == []
    assert tl.upload_problems([1, 3], ["cats", "dogs"])
    assert tl.upload_problems([2, 2], ["cats", " Cats"])
    assert tl.upload_problems([2, 2], ["cats", ""])


def test_upload_heads_run_through_the_gate_on_the_shapes_backbone(backbone):
    """The page's upload path (AppTest cannot upload files): frozen shapes features vs raw pixels."""
    from components import transfer as ct

    stars, _ = tl.sample_crops((3,), 10, seed=7)  # star vs cross, as if the user had uploaded them
    crosses, _ = tl.sample_crops((5,), 10, seed=8)
    x, labels = np.concatenate([stars, crosses]), (0,) * 10 + (1,) * 10
    ct.run_uploads.clear()
    res = ct.run_uploads("shapes", "cpu", ("test", 1), labels, 2, list(x))
    assert res["labels"] == list(labels) and len(res["features"]) == len(res["pixels"]) == 20
    assert res["feature_dim"] == 64
    acc = float(np.mean(np.array(res["features"]) == np.array(labels)))
    acc_pixels = float(np.mean(np.array(res["pixels"]) == np.array(labels)))
    assert acc >= 0.65 and acc > acc_pixels, (acc, acc_pixels)  # 70 % vs 55 % here (LOO on 20 crops is coarse)
    ct.run_uploads.clear()


# --- the page (offline path) ----------------------------------------------------------------------


def _text(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in (at.success, at.warning, at.info):
        parts += [e.value for e in kind]  # noqa: PERF401
    return "\n".join(parts)


def test_page_shows_the_tasks_live_then_runs_the_sweep_on_a_button(backbone):
    import json

    from components import transfer as ct
    from tests.test_pages import _page

    ct.run_sweep.clear()
    at = _page(PAGE, kmax="2", steps="10", crop="4", seed="1")
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    assert "trained itself, on a different task" in text and "circle, square, triangle" in text
    assert "Section 3 uses **EfficientNet-Lite0 (ImageNet)**" in text
    assert "Backbone: **EfficientNet-Lite0 (ImageNet)**, frozen" in text and "Offline demonstration" not in text
    assert "Not run yet" in text
    assert at.number_input(key="tl.crop").value == 4
    _, truth = tl.target_crop(4)
    assert f"What the source network 'thinks' this {tl.SHAPE_CLASSES[truth]} is" in text
    bars = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert len(bars) == 3  # live, before any button: the shapes network twice, then the ImageNet head
    assert all("source network's softmax" in json.dumps(b) for b in bars[:2])
    assert "ImageNet softmax" in json.dumps(bars[2])
    assert not at.metric

    at.button(key="tl.train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    labels = {m.label: m.value for m in at.metric}
    assert {"Frozen + head, 2 per class", "Fine-tuned, 2 per class", "From scratch, 2 per class",
            "Chance (3 classes)"} <= labels.keys()
    text = _text(at)
    assert "| Examples per class | Frozen + head | Full fine-tuning | From scratch |" in text
    assert "\n| 1 | " in text and "\n| 2 | " in text and "| 5 |" not in text
    expected = tl.sweep(tl.Recipe(shots=(1, 2), steps=10, seed=1), ct.backbone())  # the page shows these numbers
    by = {(r["shots"], r["regime"]): r["accuracy"] for r in expected["rows"]}
    assert labels["Frozen + head, 2 per class"] == f"{by[(2, 'frozen')]:.0%}"
    assert labels["From scratch, 2 per class"] == f"{by[(2, 'scratch')]:.0%}"
    charts = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("labelled examples per class (log scale)" in s and '"log"' in s for s in charts)
    assert any(b.label == "Download the sweep (CSV)" for b in at.get("download_button"))
    at.run()
    assert at.button(key="tl.train").disabled  # done for these settings in this session
    ct.run_sweep.clear()


STRONG = (("hflip", 0.5), ("rotate", 45.0), ("crop", 0.15), ("jitter", 0.8))  # core.augment settings


def _photo_variants(keys: tuple[str, ...], n: int, seed: int = 0) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """``n`` heavily augmented copies of each sample photo in ``keys`` (crops down to 15 % of the area,
    rotations up to 45 degrees, flips, colour jitter 0.8), labelled by photo: a small labelled set of
    real photos whose classes raw pixels cannot tell apart by position or colour alone."""
    from core import augment as aug
    from core.images import load_sample

    images, labels = [], []
    for c, key in enumerate(keys):
        draws = aug.augment(aug.plain_sample(load_sample(key).work), STRONG, seed=seed * 10 + c, n=n)
        images += [d.image for d in draws]
        labels += [c] * n
    return images, tuple(labels)


def test_page_on_chelsea_shows_what_efficientnet_s_own_head_says(backbone):
    """Section 3 names its backbone in the model caption and shows its ImageNet head live on the active photo."""
    import pyarrow as pa

    from tests.test_pages import _page

    at = _page(PAGE, img="chelsea")
    assert not at.exception, [e.value for e in at.exception]
    # The sweep's defaults are core.transfer.Recipe's (the page declares them from it).
    assert at.slider(key="tl.steps").value == tl.Recipe().steps
    assert at.number_input(key="tl.seed").value == tl.Recipe().seed
    model = [c.value for c in at.caption if c.value.startswith("🧠 Model:")]
    assert len(model) == 1 and "EfficientNet\\-Lite0" in model[0] and "Chelsea the cat" in model[0]
    assert "Offline demonstration" not in _text(at)
    assert "What its own ImageNet head says about your active image (Chelsea the cat)" in _text(at)
    chart = at.get("vega_lite_chart")[2]
    rows = pa.ipc.open_stream(chart.proto.data.data).read_all().to_pylist()
    assert len(rows) == 5 and rows[0]["class"] == "Egyptian cat"  # p = 0.77 here
    assert [r["probability"] for r in rows] == sorted((r["probability"] for r in rows), reverse=True)
    assert "Top 5 of ImageNet's 1000 classes" in _text(at)


def test_page_trains_heads_on_uploaded_images(backbone, monkeypatch):
    """AppTest cannot upload files, so st.file_uploader is replaced by one that returns augmented copies
    of Chelsea and of the coffee cup (and one broken file) as if the user had sorted them into two classes."""
    import streamlit as st
    from PIL import Image

    from components import transfer as ct
    from tests.test_pages import _page

    def png(rgb):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        return buf.getvalue()

    class Upload:
        def __init__(self, name, data):
            self.name, self.data = name, data

        def getvalue(self):
            return self.data

    images, labels = _photo_variants(("chelsea", "coffee"), 8)
    groups = [[Upload(f"cat{i}.png", png(im)) for i, im in enumerate(images[:8])]
              + [Upload("[x](http://e).jpg", b"junk")],
              [Upload(f"cup{i}.png", png(im)) for i, im in enumerate(images[8:])]]
    monkeypatch.setattr(st, "file_uploader", lambda label, *a, key=None, **k: groups[int(key[-1])])
    ct.run_uploads.clear()
    at = _page(PAGE)
    at.text_input(key="tl.name0").input("cats").run()
    assert not at.exception, [e.value for e in at.exception]
    warn = "\n".join(w.value for w in at.warning)
    assert "Skipped **\\[x\\]\\(http\\:" in warn  # the bad file is named literally, never as a link
    assert "cats: 8 images · class 2: 8 images" in "\n".join(c.value for c in at.caption)
    assert at.button(key="tl.upload").label == ("Train heads on EfficientNet-Lite0 (ImageNet) features and on raw "
                                                "pixels (leave-one-out)")
    at.button(key="tl.upload").click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    got = float(metrics["Frozen EfficientNet-Lite0 features + head"].rstrip("%")) / 100
    pixels = float(metrics["Raw 16 × 16 pixels + head (no pretraining)"].rstrip("%")) / 100
    assert got >= 0.9 and got > pixels, (got, pixels)  # measured 100 % vs 75 % (seeds 1-4: 100 % vs 75-88 %)
    assert metrics["Chance (2 classes)"] == "50%"
    assert "| cats | 8 |" in "\n".join(m.value for m in at.markdown)
    assert "1280 numbers per image" in "\n".join(c.value for c in at.caption)
    ct.run_uploads.clear()


def _star_cross(n: int = 10):
    stars, _ = tl.sample_crops((3,), n, seed=7)
    crosses, _ = tl.sample_crops((5,), n, seed=8)
    return list(np.concatenate([stars, crosses])), (0,) * n + (1,) * n


def test_resnet_features_are_the_pooled_512_numbers(monkeypatch):
    """The ImageNet feature extractor on ResNet-18's architecture with untrained weights (no weights file
    is needed): layer4 averaged over positions, i.e. everything but the fc layer, 512 numbers per image."""
    import torch

    import components.classifier as cc
    from components import transfer as ct
    from core.classifier import Classifier
    from models import registry

    model = registry.for_inference(registry.build_architecture("resnet18"))
    clf = Classifier.imagenet(model, [str(i) for i in range(1000)])
    monkeypatch.setattr(cc, "classifier", lambda name, device: clf)
    images = _star_cross(2)[0] + [np.zeros((300, 500, 3), np.uint8)]
    feats = ct._imagenet_features("resnet18", images, "cpu", lambda: None)
    assert feats.shape == (5, 512)
    with torch.inference_mode():
        x = clf.tensor(images[0])
        direct = torch.flatten(model.avgpool(model.layer4(model.layer3(model.layer2(model.layer1(
            model.maxpool(model.relu(model.bn1(model.conv1(x))))))))), 1)
    assert torch.allclose(torch.from_numpy(feats[0]), direct[0], atol=1e-5)
    assert not model.layer4._forward_hooks  # the hook is gone after the pass


# --- EfficientNet-Lite0 on real photos (installed with the lab: never skipped) ------------------------


def test_efficientnet_features_are_the_1280_numbers_its_classifier_reads(efficientnet):
    import torch

    images, _ = _photo_variants(("chelsea", "rocket"), 2)
    feats = tl.pooled_features(efficientnet, images + [np.zeros((300, 500, 3), np.uint8)], batch=3)
    assert feats.shape == (5, 1280)
    model = efficientnet.model
    with torch.inference_mode():  # timm's own path: features, global average pool, before the classifier
        direct = model.forward_head(model.forward_features(efficientnet.tensor(images[1])), pre_logits=True)
        logits = model.classifier(torch.from_numpy(feats[:1]))
    assert torch.allclose(torch.from_numpy(feats[1]), direct[0], atol=1e-4)
    assert int(logits.argmax()) == int(efficientnet.probs(images[0]).argmax())  # the head reads these numbers
    assert not model.bn2._forward_hooks


def test_efficientnet_features_sort_augmented_photos_where_raw_pixels_fail():
    """Three classes (Chelsea, the coffee cup, the astronaut), 8 heavily augmented copies each, sorted by
    leave-one-out heads through the page's own path (components.transfer.run_uploads).
    Measured on draw seeds 0-4: features 100, 100, 100, 100, 96 %; raw pixels 54, 67, 71, 79, 54 %;
    smallest gap 21 points; chance 33 %. The network is pretrained and the draws seeded: only float
    rounding differs between CPUs. The test runs seed 0 (100 % vs 54 %)."""
    from components import transfer as ct

    images, labels = _photo_variants(("chelsea", "coffee", "astronaut"), 8, seed=0)
    ct.run_uploads.clear()
    res = ct.run_uploads("efficientnet_lite0", "cpu", ("photos", 0), labels, 3, images)
    ct.run_uploads.clear()
    y = np.array(labels)
    acc = float(np.mean(np.array(res["features"]) == y))
    acc_pixels = float(np.mean(np.array(res["pixels"]) == y))
    assert res["feature_dim"] == 1280 and res["labels"] == list(labels)
    assert acc >= 0.9, (acc, acc_pixels)
    assert acc >= acc_pixels + 0.2, (acc, acc_pixels)
    assert acc >= 1 / 3 + 0.5


@pytest.mark.real_weights
def test_resnet18_imagenet_features_transfer_to_shapes(real_weights):
    from components import transfer as ct

    real_weights("resnet18")
    images, labels = _star_cross(10)
    ct.run_uploads.clear()
    res = ct.run_uploads("resnet18", "cpu", ("real", 1), labels, 2, images)
    assert res["feature_dim"] == 512
    assert float(np.mean(np.array(res["features"]) == np.array(labels))) >= 0.7
    ct.run_uploads.clear()
