"""Pooling (Q16): max, average, global and adaptive pooling on the active photo, what a shift
does to pooled features, and RoI pooling vs RoIAlign on a box."""

import streamlit as st

from components.frame import lab_page
from components import pooling as cp
from components.urlstate import UrlState
from core import pooling as pl  # numpy only at import; torch inside functions
from core.params import Param
from core.tables import rows_csv

page = lab_page("pooling")
ctx = page.ctx

MODES = ("max", "avg", "global max", "global avg", "adaptive max", "adaptive avg")
MODE = Param(default="max", kind=str, choices=MODES, label="Pooling")
K = Param(default=2, kind=int, lo=1, hi=16, label="Kernel k")
S = Param(default=2, kind=int, lo=1, hi=16, label="Stride s")
P = Param(default=0, kind=int, lo=0, hi=8, label="Padding p",
          help="At most k/2 (PyTorch's rule); larger values are clipped.")
OUT = Param(default=7, kind=int, lo=1, hi=32, label="Adaptive output size")
SHIFT = Param(default=8, kind=int, lo=1, hi=32, label="Largest shift K (pixels, circular, along x)")
STRIDE = Param(default=16, kind=int, choices=(1, 4, 8, 16, 32), label="Feature-map stride",
               help="The box is pooled from a map this many times smaller than the image, as in a "
                    "detector's backbone (here: the image average-pooled by the stride).")

url = UrlState("pool")
rgb = cp.working_image(ctx.image.digest, ctx.image.work)
H, W = rgb.shape[:2]

# --- 1. Pooling the image ---------------------------------------------------------------------
st.subheader("1 · Pool the image")
c1, c2, c3, c4, c5 = st.columns([3, 2, 2, 2, 2])
mode = url.radio("mode", MODE, c1, horizontal=True)
k = int(url.slider("k", K, c2))
s = int(url.slider("s", S, c3))
p = int(url.slider("p", P, c4))
out_n = int(url.slider("out", OUT, c5))
p_used = min(p, k // 2)


x = pl.to_tensor(rgb)
if mode in ("max", "avg"):
    y = pl.pool(x, mode, k, s, p_used)
    fh, fw = pl.output_size(H, k, s, p_used), pl.output_size(W, k, s, p_used)
    ok = (fh, fw) == tuple(y.shape[-2:])
    st.markdown(f"Output size: H_out = floor((H + 2p − k) / s) + 1 = floor(({H} + 2·{p_used} − {k}) / {s}) + 1 = **{fh}**, "
                f"W_out = floor(({W} + 2·{p_used} − {k}) / {s}) + 1 = **{fw}** {'=' if ok else '≠'} tensor size "
                f"{tuple(y.shape[-2:])} {'✓' if ok else '✗'}"
                + (f" (padding clipped from {p} to {p_used} = k // 2)" if p_used != p else ""))
elif mode.startswith("global"):
    y = pl.global_pool(x, mode.split()[1])[..., None, None]
    st.markdown(f"Global {mode.split()[1]} pooling: every channel of the {H}×{W} map becomes one number → output "
                f"{tuple(y.shape[-2:])}; values (R, G, B) = {', '.join(f'{v:.3f}' for v in y.flatten().tolist())}.")
else:
    y = pl.adaptive_pool(x, mode.split()[1], out_n)
    bins = pl.adaptive_bins(H, out_n)
    st.markdown(f"Adaptive pooling picks the windows for a fixed output {out_n}×{out_n} = tensor size {tuple(y.shape[-2:])}: "
                f"row bin i covers floor(i·H/n) … ceil((i+1)·H/n), e.g. the first rows {bins[0]}, {bins[1] if len(bins) > 1 else ''} "
                "— windows of varying size that may overlap. This is how a network accepts any input size before its classifier.")
a, b = st.columns(2)
a.image(rgb, caption=f"Input {H}×{W} (your photo at long side {cp.WORK_SIDE})", width="stretch")
b.image(cp.upscale(cp.to_uint8(y), max(H, W)), caption=f"{mode} pooled: {y.shape[-2]}×{y.shape[-1]} "
        f"({y.shape[-2] * y.shape[-1] / (H * W):.1%} of the positions), shown enlarged", width="stretch")

# --- 2. Translation ------------------------------------------------------------------------------
st.subheader("2 · Shift the image: what stays the same?")
max_shift = int(url.slider("shift", SHIFT))
rows = cp.translation_rows(ctx.image.digest, rgb, max_shift, 2, 2)
cp.translation_chart(rows)
at1 = {r["representation"]: r["cosine"] for r in rows if r["shift_px"] == 1}
st.caption(f"Grey image, mean-centred features. At a 1-px shift: no pooling {at1['no pooling']:.3f}, 2×2 max pool "
           f"{at1['max pool']:.3f}, 2×2 avg pool {at1['avg pool']:.3f}, global max {at1['global max']:.3f}. "
           "A circular shift only moves values around, so global pooling is exactly invariant; local pooling "
           "absorbs shifts smaller than its window and only partly.")
st.download_button("Download curves (CSV)", lambda: rows_csv(rows), file_name="pooling_translation.csv",
                   mime="text/csv", key="pool.csv")

# --- 3. RoI pooling vs RoIAlign ---------------------------------------------------------------
st.subheader("3 · RoI pooling vs RoIAlign on a box")
r1, r2, r3 = st.columns([2, 3, 3])
stride = int(url.select_slider("stride", STRIDE, r1))
bx = r2.slider("Box left and right (% of the width)", 0.0, 100.0, (27.3, 58.9), step=0.1, key="pool.bx")
by = r3.slider("Box top and bottom (% of the height)", 0.0, 100.0, (22.1, 51.7), step=0.1, key="pool.by")
url.sync()
x1, x2 = round(bx[0] * W / 100, 1), round(max(bx[1] * W / 100, bx[0] * W / 100 + 1), 1)
y1, y2 = round(by[0] * H / 100, 1), round(max(by[1] * H / 100, by[0] * H / 100 + 1), 1)
box = (x1, y1, x2, y2)
fmap = pl.pool(x, "avg", stride, stride) if stride > 1 else x
scale = 1.0 / stride
rp = pl.roi_pool(fmap, box, 7, scale)
ra = pl.roi_align(fmap, box, 7, scale, sampling_ratio=2, aligned=True)
q = pl.roi_pool_quantised(box, scale, 7, fmap.shape[-2], fmap.shape[-1])
pic = cp.draw_boxes(rgb, [(box, (0, 220, 0)), (q["image_box"], (230, 30, 30))])
d1, d2, d3 = st.columns(3)
d1.image(pic, caption="Green: your box. Red: what RoI pooling actually reads after snapping to feature cells.",
         width="stretch")
d2.image(cp.upscale(cp.to_uint8(rp[None]), 280), caption="roi_pool 7×7 (quantised, max per bin)", width="stretch")
d3.image(cp.upscale(cp.to_uint8(ra[None]), 280), caption="roi_align 7×7 (bilinear, sampling ratio 2, aligned)",
         width="stretch")
st.markdown(f"RoI quantisation at stride {stride}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) px → ×1/{stride} = "
            f"({x1 * scale:.2f}, {y1 * scale:.2f}, {x2 * scale:.2f}, {y2 * scale:.2f}) cells → rounded to cells "
            f"{q['cells']} → image box ({', '.join(f'{v:g}' for v in q['image_box'])}). Bin rows: "
            f"{', '.join(f'{r0}–{r1}' for r0, r1 in q['rows'])}. RoIAlign keeps the fractional coordinates and "
            f"samples bilinearly; the two outputs differ by {float((rp - ra).abs().mean()):.3f} on average (pixel "
            "values in 0–1).")

page.close()
