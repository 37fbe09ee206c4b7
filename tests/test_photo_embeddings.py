"""Embeddings and retrieval on real photos, with the lab's default network EfficientNet-Lite0.

Its weights come with requirements.txt, so nothing here is skipped. The claim the page makes
for photos: a mirrored or cropped copy of a photo finds the photo itself as its nearest
neighbour with the last stage's average-pooled vector (what the network's own classifier
reads), while raw 16 x 16 pixels often pick another photo. Then the page itself on Chelsea."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core import embeddings as em

NAME = "efficientnet_lite0"
PAGE = "pages/28_Embeddings_and_retrieval.py"
STAGES = ["stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head"]


@pytest.fixture(scope="module")
def clf(efficientnet):
    return efficientnet


@pytest.fixture(scope="module")
def photos() -> tuple[list[str], list[np.ndarray]]:
    """The 11 sample photos with a file and scikit-learn's two, at the gallery's size (long side 256)."""
    from sklearn.datasets import load_sample_images

    from components.embeddings import EMBED_LONG_SIDE
    from core.images import SAMPLES, load_sample
    from core.imageio import fit_long_side

    keys = [k for k, (_, file) in SAMPLES.items() if file is not None]
    images = [fit_long_side(load_sample(k).work, EMBED_LONG_SIDE) for k in keys]
    extra = load_sample_images().images
    return keys + ["china", "flower"], images + [fit_long_side(im, EMBED_LONG_SIDE) for im in extra]


@pytest.fixture(scope="module")
def originals(clf, photos) -> dict:
    return em.embed(clf, photos[1], pools=("avg",), layers=("head",))["avg"]


def test_efficientnet_embeds_at_eight_stages_and_its_head_vector_is_what_the_classifier_reads(clf, photos):
    import torch

    keys, images = photos
    assert list(em.embedding_layers(clf)) == STAGES
    assert em.input_side(clf) == 224 and em.head_pool(clf) == "avg"
    feats = em.embed(clf, images[:3], batch=2)
    dims = {name: f.shape for name, f in feats["avg"].items()}
    assert dims == {"stage1": (3, 16), "stage2": (3, 24), "stage3": (3, 40), "stage4": (3, 80), "stage5": (3, 112),
                    "stage6": (3, 192), "stage7": (3, 320), "head": (3, 1280), em.RAW: (3, 768)}
    x = clf.tensor(np.stack([clf.resize(im) for im in images[:3]]))
    with torch.inference_mode():  # timm's own path to the classifier's input, without hooks
        pre = clf.model.forward_head(clf.model.forward_features(x), pre_logits=True)
    assert np.allclose(feats["avg"]["head"], em.l2_normalise(pre.numpy()), atol=1e-5)
    assert not clf.model.bn2._forward_hooks  # capture() removed its hooks


def _crop(im: np.ndarray, frac: float, where: str) -> np.ndarray:
    h, w = im.shape[:2]
    ch, cw = int(h * frac), int(w * frac)
    y, x = ((h - ch) // 2, (w - cw) // 2) if where == "centre" else (0, 0)
    return np.ascontiguousarray(im[y:y + ch, x:x + cw])


COPIES = {
    "mirrored": lambda im: np.ascontiguousarray(im[:, ::-1]),
    "top-left 70 % crop": lambda im: _crop(im, 0.7, "top-left"),
    "mirrored, centre 80 % crop": lambda im: _crop(im[:, ::-1], 0.8, "centre"),
}


@pytest.mark.parametrize("copy", COPIES)
def test_a_copy_finds_its_own_photo_at_the_head_and_raw_pixels_do_worse(clf, photos, originals, copy):
    """Each of the 13 photos' copies is the query; the gallery is the 13 originals. ``margin``: the
    copy's cosine to its own photo minus its best cosine to any other photo (> 0: found first).

    Measured here (head, average pool | raw pixels), hits of 13 and mean margin:
      mirrored                    13, min margin +0.64, mean +0.72 | 6, mean +0.00
      top-left 70 % crop          13, min margin +0.46, mean +0.57 | 9, mean +0.07
      mirrored, centre 80 % crop  13, min margin +0.41, mean +0.62 | 6, mean -0.08
    The network is pretrained and deterministic: only float rounding differs between CPUs."""
    keys, images = photos
    queries = em.embed(clf, [COPIES[copy](im) for im in images], pools=("avg",), layers=("head",))["avg"]
    n = len(images)
    found, margins = {}, {}
    for layer in ("head", em.RAW):
        sims = queries[layer] @ originals[layer].T
        own = np.diag(sims).copy()
        np.fill_diagonal(sims, -np.inf)
        margins[layer] = own - sims.max(axis=1)
        found[layer] = [keys[i] for i in range(n) if margins[layer][i] > 0]
        for i in range(n):  # the page's own search agrees with the margin
            top, _ = em.cosine_top_k(queries[layer][i], originals[layer], 1)
            assert (top[0] == i) == (margins[layer][i] > 0), (layer, keys[i])
    assert found["head"] == keys, f"missed: {sorted(set(keys) - set(found['head']))}"
    assert margins["head"].min() >= 0.2, dict(zip(keys, margins["head"].round(3)))  # measured >= 0.41
    assert len(found[em.RAW]) <= n - 3, found[em.RAW]  # measured 6 or 9 of 13
    assert margins["head"].mean() >= margins[em.RAW].mean() + 0.3  # measured gaps 0.50-0.72


# --- the page on Chelsea ----------------------------------------------------------------------------


def _charts(at) -> list[tuple[dict, list[dict]]]:
    import pyarrow as pa

    out = []
    for el in at.get("vega_lite_chart"):
        spec, data = json.loads(el.proto.spec), el.proto.data.data
        rows = pa.ipc.open_stream(data).read_all().to_pylist() if data else spec.get("data", {}).get("values", [])
        out.append((spec, rows))
    return out


def test_page_on_chelsea_embeds_with_efficientnet_at_its_head():
    from tests.test_pages import _page

    at = _page(PAGE, img="chelsea")
    assert not at.exception, [e.value for e in at.exception]
    layer, pool = at.select_slider(key="emb.layer"), at.radio(key="emb.pool")
    assert (layer.label, layer.value) == ("Embedding layer", STAGES.index("head"))  # EfficientNet's last stage
    assert (pool.label, pool.value) == ("Pooling", "avg")  # its own head's pooling
    k, n = at.slider(key="emb.k"), at.slider(key="emb.n")
    assert (k.label, k.value, k.min, k.max, n.label, n.value, n.min, n.max) == (
        "Neighbours k", 5, 1, 12, "Synthetic shapes per class", 8, 2, 20)
    assert at.radio(key="emb.map").value == em.METHODS[0] and at.toggle(key="emb.samples").value is True
    assert not any("Offline demonstration" in i.value for i in at.info)
    captions = [c.value for c in at.caption]
    model = [c for c in captions if c.startswith("🧠 Model:")]
    assert len(model) == 1 and "EfficientNet\\-Lite0" in model[0] and "Chelsea the cat" in model[0]
    text = "\n".join(captions)
    n_gallery = 11 + 6 * 8  # the sample photos with a file + 8 shapes per class (the defaults)
    assert f"{n_gallery} images embedded with **EfficientNet-Lite0" in text
    assert "**head** → 1280-dimensional" in text and "the vector the network's own classifier reads" in text
    assert "the query itself left out" in text  # Chelsea is a gallery sample
    (_, points), (bar_spec, bars) = _charts(at)
    assert [p["name"] for p in points if p["role"] == "query"] == ["Chelsea the cat"]
    assert sum(p["role"] == "neighbour" for p in points) == 5
    assert len(bars) == 2 * len(STAGES) + 1
    chance = bar_spec["layer"][1]["data"]["values"][0]["value"]
    head = next(b["precision"] for b in bars if b["layer"] == "head" and b["pooling"] == "global average pool")
    raw = next(b["precision"] for b in bars if b["layer"] == em.RAW)
    # measured: head 0.43, raw pixels 0.22, chance 0.15 (shapes seed 0, 8 per class, k = 5)
    assert chance == pytest.approx(7 / 47)
    assert head >= 2 * chance and head >= raw + 0.1


def test_switching_the_backbone_in_the_sidebar_moves_to_its_last_stage():
    """The shapes CNN has 4 stages, EfficientNet-Lite0 8: the layer slider follows the model."""
    from tests.test_pages import _page

    at = _page(PAGE, clf="shapes-cnn", samples="0", n="2", layer="1")
    assert not at.exception, [e.value for e in at.exception]
    assert any(i.value.startswith("**Shapes CNN chosen") for i in at.info)
    assert "**block2** → " in "\n".join(c.value for c in at.caption)
    at.selectbox(key="lab.classifier").set_value(NAME).run()
    assert not at.exception, [e.value for e in at.exception]
    text = "\n".join(c.value for c in at.caption)
    assert "**head** → 1280-dimensional" in text and "EfficientNet" in text
    assert not at.info  # no notice about the shapes CNN any more
