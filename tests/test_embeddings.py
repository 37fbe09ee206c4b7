"""Embeddings and retrieval: pooled CNN features, cosine top-k, precision@k, 2-D maps, and the page."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import embeddings as em

PAGE = "pages/28_Embeddings_and_retrieval.py"


def _unit_angles(degrees) -> np.ndarray:
    r = np.deg2rad(np.asarray(degrees, float))
    return np.stack([np.cos(r), np.sin(r)], axis=1)


# --- pure functions ---------------------------------------------------------------------------


def test_l2_normalised_rows_have_unit_norm_and_zero_stays_zero():
    x = np.random.default_rng(0).normal(size=(20, 37)) * np.arange(1, 21)[:, None]
    x[3] = 0.0
    out = em.l2_normalise(x)
    norms = np.linalg.norm(out, axis=1)
    assert np.allclose(np.delete(norms, 3), 1.0, atol=1e-6)
    assert norms[3] == 0.0
    assert np.allclose(out[5], x[5] / np.linalg.norm(x[5]), atol=1e-6)  # direction unchanged


@pytest.mark.parametrize("k,exclude", [(1, None), (5, None), (5, 7), (40, 0), (0, None)])
def test_cosine_top_k_equals_a_brute_force_sort(k, exclude):
    rng = np.random.default_rng(k)
    gallery, query = rng.normal(size=(40, 16)), rng.normal(size=16)
    cos = [float(np.dot(g, query) / (np.linalg.norm(g) * np.linalg.norm(query))) for g in gallery]
    brute = sorted((i for i in range(40) if i != exclude), key=lambda i: -cos[i])[:k]
    idx, sims = em.cosine_top_k(query, gallery, k, exclude=exclude)
    assert list(idx) == brute
    assert np.allclose(sims, [cos[i] for i in brute], atol=1e-5)


PRECISION_CASES = [
    # (angles of unit vectors, labels, k, precision@k worked out by hand)
    ([0, 0, 90, 90], "aabb", 1, 1.0),  # each one's twin is nearest
    ([0, 0, 90, 90], "aabb", 2, 0.5),  # twin, then one of the other class
    ([0, 0, 90, 90], "aabb", 3, 1 / 3),
    ([0, 10, 20, 30], "abab", 1, 0.0),  # alternating labels: the nearest is always the other class
    # k=2: 0 -> {10 b, 20 a} 1/2; 10 -> {0 a, 20 a} 0; 20 -> {10 b, 30 b} 0; 30 -> {20 a, 10 b} 1/2
    ([0, 10, 20, 30], "abab", 2, 0.25),
    ([0, 5, 80, 90, 180], "aabbc", 1, 0.8),  # c has no partner: 4 of 5 hit
]


@pytest.mark.parametrize("angles,labels,k,expected", PRECISION_CASES)
def test_precision_at_k_equals_hand_computed_cases(angles, labels, k, expected):
    assert em.precision_at_k(_unit_angles(angles), list(labels), k) == pytest.approx(expected)


@pytest.mark.parametrize("labels,expected", [("aabb", 1 / 3), ("aaab", 0.5), ("abcd", 0.0), ("aaaa", 1.0)])
def test_chance_precision_by_hand(labels, expected):
    assert em.chance_precision(list(labels)) == pytest.approx(expected)


def test_precision_rejects_too_few_items():
    with pytest.raises(ValueError):
        em.precision_at_k(np.ones((1, 3)), ["a"], 1)


@pytest.mark.parametrize("method", em.METHODS)
@pytest.mark.parametrize("n", [2, 3, 30])
def test_projection_has_the_right_shape_and_is_seeded(method, n):
    x = np.random.default_rng(n).normal(size=(n, 12)).astype(np.float32)
    a, b = em.project(x, method, seed=0), em.project(x, method, seed=0)
    assert a.shape == (n, 2) and np.isfinite(a).all()
    assert np.array_equal(a, b)  # same seed -> same map


def test_tsne_perplexity_stays_below_n_and_pca_matches_sklearn():
    from sklearn.decomposition import PCA

    assert all(em.perplexity_for(n) < n for n in range(4, 200))
    assert em.perplexity_for(1000) == 30.0
    for shape in [(25, 6), (7, 1280), (60, 320)]:  # the page's numpy PCA is scikit-learn's, signs included
        x = np.random.default_rng(1).normal(size=shape) * np.linspace(3, 0.1, shape[1])
        ours = em.project(x, "PCA", seed=0)
        ref = PCA(n_components=2, random_state=0).fit_transform(x)
        assert np.allclose(ours, ref, atol=1e-4), shape


def test_raw_pixels_ignore_brightness_offsets_and_the_gallery_key_sees_labels():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 200, size=(32, 32, 3), dtype=np.uint8)
    brighter = (img.astype(int) + 40).astype(np.uint8)  # the same picture, 40 levels lighter
    f = em.raw_pixels([img, brighter])
    assert f.shape == (2, 16 * 16 * 3)
    assert float(f[0] @ f[1]) == pytest.approx(1.0, abs=1e-5)  # mean removed: same vector
    assert em.gallery_digest(["x", "y"], ["a", "b"]) != em.gallery_digest(["x", "y"], ["a", "a"])
    assert em.gallery_digest(["x", "y"], ["a", "b"]) != em.gallery_digest(["y", "x"], ["b", "a"])


# --- the trained shapes CNN's embeddings ---------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_clf(trained_shapes_cnn):
    from core.classifier import Classifier

    return Classifier.shapes(trained_shapes_cnn)


def test_embeddings_are_unit_rows_of_every_layer_and_match_a_manual_pool(shapes_clf):
    import torch

    from core.shapes import make_classification_set

    images, _ = make_classification_set(5, seed=4)
    feats = em.embed(shapes_clf, list(images), batch=2)
    assert set(feats) == set(em.POOLS)
    for pool in em.POOLS:
        assert list(feats[pool]) == ["block1", "block2", "block3", "block4", em.RAW]
        for name, f in feats[pool].items():
            assert f.shape[0] == 5 and np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5), (pool, name)
    x = shapes_clf.normalise(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255)
    with torch.no_grad():
        maps = shapes_clf.model.features(x)  # block4's output, without hooks
    manual = em.l2_normalise(maps.amax(dim=(2, 3)).numpy())
    assert np.allclose(feats["max"]["block4"], manual, atol=1e-5)
    manual = em.l2_normalise(maps.mean(dim=(2, 3)).numpy())
    assert np.allclose(feats["avg"]["block4"], manual, atol=1e-5)
    assert not shapes_clf.model.features[3]._forward_hooks  # capture() removed its hooks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_shapes_share_their_class_far_above_chance(shapes_clf, seed):
    """The claim the page makes: deep pooled features retrieve by class, raw pixels do not.
    Measured by hand on seeds 0-2 (60 crops, k=5): block4 max-pooled 0.83-0.90, block4
    average-pooled 0.39-0.56, raw pixels 0.15-0.21, chance 0.16-0.18."""
    from core.shapes import make_classification_set

    images, labels = make_classification_set(60, seed=seed)
    feats = em.embed(shapes_clf, list(images))
    chance = em.chance_precision(labels)
    deep = em.precision_at_k(feats["max"]["block4"], labels, 5)
    raw = em.precision_at_k(feats["max"][em.RAW], labels, 5)
    assert chance < 0.2
    assert deep >= 0.7
    assert raw <= 0.3 and deep - raw >= 0.5
    assert em.precision_at_k(feats["avg"]["block4"], labels, 5) >= 2 * chance
    assert deep > em.precision_at_k(feats["max"]["block1"], labels, 5) + 0.4  # depth matters


# --- the page, with the shapes CNN chosen in the sidebar (fast: 64 px); EfficientNet-Lite0 on real
# photos is in tests/test_photo_embeddings.py ---------------------------------------------------


def _charts(at) -> list[tuple[dict, list[dict]]]:
    import pyarrow as pa

    out = []
    for el in at.get("vega_lite_chart"):
        spec, data = json.loads(el.proto.spec), el.proto.data.data
        rows = pa.ipc.open_stream(data).read_all().to_pylist() if data else spec.get("data", {}).get("values", [])
        out.append((spec, rows))
    return out


def test_page_shows_neighbours_map_and_precision_and_k_does_not_re_embed(trained_models, monkeypatch):
    from components import embeddings as ce
    from tests.test_pages import _page

    calls = []
    real = em.embed
    monkeypatch.setattr(em, "embed", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    ce.embeddings.clear()

    at = _page(PAGE, k="3", n="4", seed="1", clf="shapes-cnn")
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join([i.value for i in at.info] + [c.value for c in at.caption])
    assert "Shapes CNN chosen in the sidebar" in text and "Offline demonstration" not in text
    assert "🧠 Model: **Shapes CNN" in text
    n_gallery = 11 + 6 * 4  # the sample photos with a file + 4 shapes per class
    assert calls == [n_gallery]  # the gallery, embedded once; the astronaut query is a gallery sample
    assert f"{n_gallery} images embedded" in text and "block4" in text
    assert "The 3 gallery images" in text and "the query itself left out" in text
    (scatter_spec, points), (bar_spec, bars) = _charts(at)
    assert len(points) == n_gallery
    assert sum(p["role"] == "neighbour" for p in points) == 3
    assert [p["name"] for p in points if p["role"] == "query"] == ["Astronaut"]
    deep = next(b["precision"] for b in bars if b["layer"] == "block4" and b["pooling"] == "global max pool")
    raw = next(b["precision"] for b in bars if b["layer"] == em.RAW)
    chance = bar_spec["layer"][1]["data"]["values"][0]["value"]
    assert chance == pytest.approx(3 / 23)  # 4 per class: 3 of the 23 others share a class
    assert deep > raw + 0.3 and deep > 3 * chance

    at2 = _page(PAGE, k="7", n="4", seed="1", clf="shapes-cnn")  # the same gallery, another k (a new session's link)
    assert not at2.exception, [e.value for e in at2.exception]
    assert calls == [n_gallery]  # not embedded again
    assert "The 7 gallery images" in "\n".join(c.value for c in at2.caption)
    assert sum(p["role"] == "neighbour" for p in _charts(at2)[0][1]) == 7
    at2.slider(key="emb.k").set_value(2).run()
    at2.radio(key="emb.map").set_value("t-SNE").run()
    assert not at2.exception and calls == [n_gallery]
    assert sum(p["role"] == "neighbour" for p in _charts(at2)[0][1]) == 2


class _Upload:
    def __init__(self, name: str, data: bytes, file_id: str):
        self.name, self._data, self.file_id = name, data, file_id

    def getvalue(self) -> bytes:
        return self._data


def test_uploads_are_decoded_bounded_and_bad_files_are_named_safely():
    from components import embeddings as ce
    from core.imageio import encode_png

    png = encode_png(np.full((40, 50, 3), 120, np.uint8))
    bad = _Upload("![x](http://evil/p.png)", b"not an image at all", "bad-1")
    items, notes = ce.upload_items([_Upload("ok.png", png, "ok-1"), bad])
    assert [(it.name, it.label, it.source) for it in items] == [("ok.png", "upload", "upload")]
    assert len(notes) == 1 and "left out" in notes[0] and "![x](http" not in notes[0]
    many = [_Upload(f"f{i}.png", png, f"many-{i}") for i in range(ce.MAX_UPLOADS + 6)]
    items, notes = ce.upload_items(many)
    assert len(items) == ce.MAX_UPLOADS and any(f"first {ce.MAX_UPLOADS}" in n for n in notes)


@pytest.mark.real_weights
def test_page_with_real_resnet18_embeds_with_layer4(real_weights, trained_models):
    from tests.test_pages import _page

    real_weights("resnet18")
    at = _page(PAGE, k="4", n="2", clf="resnet18")  # chosen in the sidebar's Classifier menu
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join([i.value for i in at.info] + [c.value for c in at.caption])
    assert "Offline demonstration" not in text
    assert "ResNet-18" in text and "layer4" in text and "512-dimensional" in text
    assert "The 4 gallery images" in text


def test_resnet_layers_give_64_to_512_dimensional_unit_vectors():
    """The online backbone's wiring (torchvision ResNet-18, random weights: no download here)."""
    import torch
    from torchvision.models import resnet18

    from core.classifier import Classifier

    torch.manual_seed(0)
    clf = Classifier.imagenet(resnet18(weights=None).eval(), [str(i) for i in range(1000)])
    images = [np.random.default_rng(i).integers(0, 255, (100 + 20 * i, 80, 3), dtype=np.uint8) for i in range(3)]
    feats = em.embed(clf, images)
    assert em.input_side(clf) == 224 and em.head_pool(clf) == "avg"
    assert {name: f.shape for name, f in feats["avg"].items()} == {
        "layer1": (3, 64), "layer2": (3, 128), "layer3": (3, 256), "layer4": (3, 512), em.RAW: (3, 768)}
    assert np.allclose(np.linalg.norm(feats["avg"]["layer4"], axis=1), 1.0, atol=1e-5)


def test_page_with_a_query_outside_the_gallery_embeds_it_separately(trained_models):
    from tests.test_pages import _page

    at = _page(PAGE, img="shapes", samples="0", n="2", k="12", clf="shapes-cnn")  # the scene is no gallery image
    assert not at.exception, [e.value for e in at.exception]
    points = _charts(at)[0][1]
    assert len(points) == 12 + 1  # 2 shapes per class, plus the query's own point
    query = [p for p in points if p["role"] == "query"]
    assert len(query) == 1 and query[0]["source"] == "active image"
    assert sum(p["role"] == "neighbour" for p in points) == 12  # k=12: the whole gallery
    assert "The 12 gallery images" in "\n".join(c.value for c in at.caption)
    bars = _charts(at)[1][1]
    assert all(0.0 <= b["precision"] <= 1.0 for b in bars) and len(bars) == 2 * 4 + 1
