"""Embeddings and retrieval (Q9, Q26): a gallery (sample photos, your uploads, synthetic shapes)
embedded with a pretrained CNN's pooled features (EfficientNet-Lite0 by default), the active
image's nearest neighbours by cosine similarity, the gallery mapped to 2-D (PCA / t-SNE), and how
the layer changes retrieval."""

import numpy as np
import streamlit as st

from components.frame import lab_page
from components import embeddings as ce
from components.sidebar import UPLOAD_TYPES
from components.ui import Progress
from components.urlstate import UrlState
from core import embeddings as em  # numpy only at import; torch and sklearn inside functions
from core.imageio import fit_long_side
from core.params import Param
from core.safetext import literal
from core.tables import rows_csv

page = lab_page("embeddings-retrieval")
ctx = page.ctx

url = UrlState("emb")
clf = ce.backbone(ctx)
device = ctx.device.torch_device
layer_names = list(em.embedding_layers(clf)) + [em.RAW]

LAYER = Param(default=len(layer_names) - 2, kind=int, choices=tuple(range(len(layer_names))),  # the last stage
              label="Embedding layer",
              help="Each stage's feature maps pooled over all positions into one vector per image "
                   "(raw pixels: the image shrunk to 16×16, as a baseline).")
POOL = Param(default=em.head_pool(clf), kind=str, choices=em.POOLS, label="Pooling",
             help=f"{clf.title}'s own head uses the {em.POOL_NAMES[em.head_pool(clf)]}.")
if st.session_state.get("emb.layers_of", clf.name) != clf.name:  # another backbone: its last stage, its pooling
    st.session_state["emb.layer"], st.session_state["emb.pool"] = LAYER.default, POOL.default
st.session_state["emb.layers_of"] = clf.name
K = Param(default=5, kind=int, lo=1, hi=12, label="Neighbours k")
PER_CLASS = Param(default=8, kind=int, lo=2, hi=20, label="Synthetic shapes per class",
                  help="One centred shape per 64-px crop, six classes: the labelled part of the gallery "
                       "that precision@k is measured on.")
SEED = Param(default=0, kind=int, lo=0, hi=999, step=1, label="Shapes seed")
SAMPLES_ON = Param(default=True, kind=bool, label="Sample photos",
                   help="The sidebar's sample photos, each labelled by its own name.")
METHOD = Param(default=em.METHODS[0], kind=str, choices=em.METHODS, label="Projection",
               help="PCA: the two directions of largest variance (a linear view). t-SNE: keeps each "
                    "image's near neighbours near (distances between far clusters mean little).")

# --- the gallery --------------------------------------------------------------------------
st.subheader("1 · The gallery")
g1, g2, g3 = st.columns([2, 2, 3])
use_samples = url.toggle("samples", SAMPLES_ON, g1)
per_class = int(url.slider("n", PER_CLASS, g2))
shape_seed = int(url.number_input("seed", SEED, g2))
files = g3.file_uploader(f"Your images (up to {ce.MAX_UPLOADS})", type=UPLOAD_TYPES, accept_multiple_files=True,
                         key="emb.uploads", help="Added to the gallery with the label 'upload'. Nothing is stored.")
uploads, notes = ce.upload_items(files or [])
for note in notes:
    st.warning(note, icon="🖼️")
shapes = ce.shape_items(per_class, shape_seed)
items = list(ce.sample_items() if use_samples else ()) + list(uploads) + list(shapes)
shape_rows = [i for i, it in enumerate(items) if it.source == "shape"]
labels = [it.label for it in items]
digest = ce.gallery_key(items)

# --- the embedding ------------------------------------------------------------------------
st.subheader("2 · Embed and search")
c1, c2, c3 = st.columns([3, 2, 2])
depth = url.select_slider("layer", LAYER, c1, format_func=layer_names.__getitem__)
pool = url.radio("pool", POOL, c2, format_func=em.POOL_NAMES.get, horizontal=True)
k = int(url.slider("k", K, c3))
layer = layer_names[depth]

bar = Progress(st.empty())
feats_all = ce.embeddings(clf.name, device, digest, [it.rgb for it in items], _progress=bar)
bar.done()
feats = feats_all[pool][layer]
st.caption(f"{len(items)} images embedded with **{clf.title}** at {em.input_side(clf)}×{em.input_side(clf)} px · "
           f"**{layer}** → {feats.shape[1]}-dimensional vectors of length 1 "
           + ("(pooling does not apply to raw pixels)." if layer == em.RAW else f"({em.POOL_NAMES[pool]}).")
           + (" This is the vector the network's own classifier reads." if layer == layer_names[-2]
              and pool == em.head_pool(clf) else ""))

# --- the query ----------------------------------------------------------------------------
active = f"Active image: {ctx.image.title}"
by_digest = {it.digest: i for i, it in enumerate(items)}
choices = [active] + [f"{it.name} ({it.label})" for it in items]
pick = st.selectbox("Query", range(len(choices)), format_func=choices.__getitem__, key="emb.query",
                    help="The sidebar's active image, or any gallery image.") if items else 0
if pick == 0:
    q_index = by_digest.get(ctx.image.digest)  # the active photo may be a gallery sample itself
    if q_index is None:
        q_feat = ce.query_embedding(clf.name, device, ctx.image.digest, ctx.image.work)[pool][layer][0]
        q_thumb, q_name = fit_long_side(ctx.image.work, ce.THUMB_LONG_SIDE), ctx.image.title
    else:
        q_feat, q_thumb, q_name = feats[q_index], items[q_index].thumb, items[q_index].name
else:
    q_index = pick - 1
    q_feat, q_thumb, q_name = feats[q_index], items[q_index].thumb, items[q_index].name

if not items:
    st.info("The gallery is empty: switch the sample photos on, add shapes or upload images.")
else:
    idx, sims = em.cosine_top_k(q_feat, feats, k, exclude=q_index)
    left, right = st.columns([1, 4])
    left.image(q_thumb, caption=f"Query: {literal(q_name, 60)}", width="stretch")
    right.image([items[i].thumb for i in idx], width=120,
                caption=[f"#{r + 1} · {literal(items[i].name, 40)} · cos {s:.3f}" for r, (i, s) in enumerate(zip(idx, sims))])
    result = [{"rank": r + 1, "name": items[i].name, "label": items[i].label, "source": items[i].source,
               "cosine": round(float(s), 4)} for r, (i, s) in enumerate(zip(idx, sims))]
    st.caption(f"The {len(idx)} gallery images whose {layer} vectors point most nearly the same way as the query's "
               "(cosine similarity = dot product of unit vectors; 1 = same direction)"
               + (", the query itself left out." if q_index is not None else "."))
    st.download_button("Download the neighbours (CSV)", lambda: rows_csv(result),
                       file_name=f"neighbours_{clf.name}_{layer.replace(' ', '_')}_k{k}.csv", mime="text/csv")

    # --- the map ------------------------------------------------------------------------------
    st.subheader("3 · The gallery in two dimensions")
    m1, m2 = st.columns([2, 5])
    method = url.radio("map", METHOD, m1, horizontal=True)
    extra = q_index is None
    points = feats if not extra else np.vstack([feats, q_feat[None]])
    key = (clf.name, pool, layer, digest, ctx.image.digest if extra else "")
    with st.spinner(f"{method} of {len(points)} vectors…"):
        xy = ce.projection(key, method, 0, points)
    near = set(int(i) for i in idx)
    cos_all = em.l2_normalise(feats) @ em.l2_normalise(q_feat)
    rows = [{"x": float(xy[i, 0]), "y": float(xy[i, 1]), "name": it.name, "label": it.label, "source": it.source,
             "cosine": float(cos_all[i]),
             "role": "query" if i == q_index else ("neighbour" if i in near else "gallery")}
            for i, it in enumerate(items)]
    if extra:
        rows.append({"x": float(xy[-1, 0]), "y": float(xy[-1, 1]), "name": q_name, "label": "query",
                     "source": "active image", "cosine": 1.0, "role": "query"})
    with m2:
        ce.scatter(rows, title=method)
    m1.caption(f"Each dot is one image's {layer} vector, coloured by its label; the black diamond is the query, "
               f"larger dots its {len(idx)} nearest neighbours (measured in the full {feats.shape[1]} dimensions, "
               "so they need not be the nearest dots on the map). Hover for names.")

# --- layer vs precision@k -------------------------------------------------------------------
st.subheader("4 · Which layer retrieves the right class?")
if len(shape_rows) < 2:
    st.info("Add synthetic shapes to the gallery to measure precision@k.")
else:
    kk = min(k, len(shape_rows) - 1)
    shape_labels = [labels[i] for i in shape_rows]
    chance = em.chance_precision(shape_labels)
    bars = []
    for p in em.POOLS:
        for row in em.layer_precision({n: feats_all[p][n] for n in layer_names if n != em.RAW}, labels, kk, shape_rows):
            bars.append({**row, "pooling": em.POOL_NAMES[p]})
    bars += [{**row, "pooling": "none"} for row in em.layer_precision({em.RAW: feats_all[pool][em.RAW]}, labels, kk,
                                                                          shape_rows)]
    ce.precision_bars(bars, chance, kk)
    mine = next(b["precision"] for b in bars if b["layer"] == layer
                and b["pooling"] in (em.POOL_NAMES[pool], "none"))
    st.caption(f"For each of the {len(shape_rows)} synthetic shapes, its {kk} nearest other shapes (cosine) are "
               f"looked up and the share with the same class is averaged: **precision@{kk}**. With {layer} "
               f"({'no pooling' if layer == em.RAW else em.POOL_NAMES[pool]}) it is **{mine:.0%}**; picking "
               f"neighbours at random gives **{chance:.0%}** (dashed line).")
    st.download_button("Download precision per layer (CSV)", lambda: rows_csv(bars),
                       file_name=f"precision_at_{kk}_{clf.name}.csv", mime="text/csv")

url.sync()
page.close()
