"""Quantization: the INT8 grid by hand, fake quantisation, the ONNX Runtime INT8 comparison
(size, agreement and accuracy: never wall-clock), and the page."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import quantization as qz

PAGE = "pages/12_Quantization.py"


# --- the grid, by hand -------------------------------------------------------------------------

GRID_CASES = [
    # (weights, bits, per_channel, expected codes, expected scale(s))
    # 3 bits: qmax 3, max|w| = 3 -> step 1; -1.5 rounds half to even (-2)
    ([3.0, -1.5, 0.7, 2.2], 3, False, [3, -2, 1, 2], [1.0]),
    # 2 bits: qmax 1, step 1: 0.5 rounds half to even (0); -1 is the end level
    ([0.5, -1.0, 0.25, 0.0], 2, False, [0, -1, 0, 0], [1.0]),
    # per channel: steps 4 and 0.5, each channel's largest weight lands on +-qmax
    ([[4.0, -1.0], [0.5, 0.25]], 2, True, [[1, 0], [1, 0]], [4.0, 0.5]),
    # the same per tensor: one step of 4, the small channel collapses to zero
    ([[4.0, -1.0], [0.5, 0.25]], 2, False, [[1, 0], [0, 0]], [4.0]),
    # 8 bits, step 2/127: the extremes are exactly +-127
    ([2.0, -2.0, 1.0, 0.0], 8, False, [127, -127, 64, 0], [2.0 / 127]),
    # an all-zero channel: codes 0, a harmless step, no NaN
    ([[0.0, 0.0], [1.0, -0.6]], 4, True, [[0, 0], [7, -4]], [1.0, 1.0 / 7]),
]


@pytest.mark.parametrize("w, bits, per_channel, codes, scales", GRID_CASES)
def test_symmetric_quantize_hand_checked(w, bits, per_channel, codes, scales):
    w = np.array(w, dtype=np.float32)
    q = qz.symmetric_quantize(w, bits, per_channel=per_channel)
    np.testing.assert_array_equal(q.q, np.array(codes))
    np.testing.assert_allclose(q.scale.reshape(-1), np.array(scales, dtype=np.float32), rtol=1e-6)
    # every value lies on the grid, and moved by at most half a step
    np.testing.assert_array_equal(q.dequantized, (q.q * q.scale).astype(np.float32))
    assert np.all(np.abs(q.q) <= q.qmax)
    assert np.all(np.abs(q.errors(w)) <= q.scale / 2 + 1e-7)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("per_channel", [True, False])
def test_grid_holds_on_random_weights(bits, per_channel):
    rng = np.random.default_rng(bits)
    w = (rng.standard_normal((16, 8, 3, 3)) * rng.uniform(0.01, 1.0, (16, 1, 1, 1))).astype(np.float32)
    q = qz.symmetric_quantize(w, bits, per_channel=per_channel)
    err = np.abs(q.errors(w))
    assert np.all(err <= np.broadcast_to(q.scale, w.shape) / 2 * (1 + 1e-6))
    assert np.all(np.abs(q.q) <= q.qmax) and q.q.dtype.kind == "i"
    # nothing is clipped: the largest |w| (per channel or overall) sits exactly on the end level
    ends = np.abs(q.q).reshape(16, -1).max(axis=1) if per_channel else [np.abs(q.q).max()]
    assert all(e == q.qmax for e in ends)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("per_channel", [True, False])
def test_torch_fake_quant_is_the_numpy_grid(bits, per_channel):
    torch.manual_seed(bits)
    w = torch.randn(12, 5, 3, 3) * torch.rand(12, 1, 1, 1)
    got = qz._fake_quant_tensor(w, bits, per_channel).numpy()
    want = qz.symmetric_quantize(w.numpy(), bits, per_channel=per_channel).dequantized
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(6, 4)).eval()


def test_fake_quantize_works_on_a_copy_and_puts_every_weight_on_its_grid():
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fake = qz.fake_quantize(net, 3)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} of the original changed"
    for name, layer in qz.quantizable_layers(fake).items():
        w = layer.weight.detach().numpy()
        scale = np.abs(before[f"{name}.weight"].numpy()).reshape(len(w), -1).max(axis=1) / 3
        codes = w.reshape(len(w), -1) / scale[:, None]
        np.testing.assert_allclose(codes, np.round(codes), atol=1e-4)
        assert np.abs(np.round(codes)).max() <= 3
        assert torch.equal(layer.bias, before[f"{name}.bias"])  # biases stay FP32


def test_layer_histogram_draws_the_grid_it_rounds_to():
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((8, 4, 3, 3)) * np.linspace(0.05, 1, 8)[:, None, None, None]).astype(np.float32)
    narrow = qz.narrowest_channel(w)
    assert narrow == 0
    for per_channel in (True, False):
        h = qz.layer_histogram(w, 4, per_channel=per_channel, channel=narrow)
        assert h.counts.sum() == w[narrow].size
        q = qz.symmetric_quantize(w, 4, per_channel=per_channel)
        deq = q.dequantized[narrow].reshape(-1)
        # every rounded weight of the channel shown is one of the grid lines drawn
        assert np.all(np.min(np.abs(deq[:, None] - h.grid[None, :]), axis=1) < 1e-6)
        assert h.max_abs_error <= h.scale / 2 + 1e-7
        assert h.levels_used <= h.levels_total == 15
    # one scale for the layer leaves the narrow channel few levels; its own scale uses more
    shared = qz.layer_histogram(w, 4, per_channel=False, channel=narrow)
    own = qz.layer_histogram(w, 4, per_channel=True, channel=narrow)
    assert shared.levels_used < own.levels_used
    whole = qz.layer_histogram(w, 4, per_channel=True)
    assert whole.scale is None and len(whole.grid) == 0 and whole.counts.sum() == w.size
    table = {r["scale"]: r for r in qz.error_table(w, 4)}
    assert table["per channel"]["relative error"] < table["per tensor"]["relative error"]


def test_labels_match_the_benchmark():
    from benchmark import models as bm

    assert qz.UNTRAINED == bm.UNTRAINED and qz.PRETRAINED == bm.PRETRAINED and qz.TRAINED_HERE == bm.TRAINED_HERE


def test_cpu_bf16_detection_agrees_with_torch():
    native, text = qz.cpu_bf16_support()
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert native == bool(probe() or amx())
    assert ("no native BF16" in text) != native


def test_a_failed_export_raises_or_is_skipped_with_a_note(monkeypatch):
    from core import export

    def broken(*args, **kwargs):
        raise export.ExportError("ONNX export failed: \x1b[96mNo ONNX function\x1b[0m for aten.thing\nmore\nlines\nhere")

    monkeypatch.setattr(export, "export_onnx", broken)
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    kwargs = dict(calib=x, evals=qz.EvalSet(x, None, "noise"), threads=1, repeats=1, warmup=0, cpu_bf16=False)
    with pytest.raises(export.ExportError):
        qz.compare(_net(), **kwargs)
    cmp = qz.compare(_net(), skip_failed_export=True, **kwargs)
    assert [r.variant for r in cmp.rows] == [qz.EAGER_FP32] and cmp.int8_onnx == b""
    note = next(n for n in cmp.notes if n.startswith("No ONNX Runtime rows"))
    assert "\x1b" not in note and "No ONNX function for aten.thing" in note and "here" not in note


# --- the trained shapes CNN -------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes(trained_shapes_cnn):
    from core.classifier import Classifier

    clf = Classifier.shapes(trained_shapes_cnn)
    return clf, qz.shapes_eval(clf, 400), qz.shapes_calibration(clf, 16)


def test_held_out_crops_are_not_the_calibration_crops(shapes):
    clf, evals, calib = shapes
    assert len(evals) >= 200 and evals.labels is not None
    flat = evals.x.reshape(len(evals), -1)
    assert not any(np.any(np.all(flat == c.reshape(1, -1), axis=1)) for c in calib)


def test_int8_agrees_with_fp32_on_the_shapes_cnn(shapes):
    clf, evals, calib = shapes
    cmp = qz.compare(clf.model, calib=calib, evals=evals, threads=1, repeats=1, warmup=0, name="shapes-cnn",
                     weights=qz.TRAINED_HERE)
    fp32, int8 = cmp.row(qz.EAGER_FP32), cmp.row(qz.INT8_STATIC)
    assert fp32.agreement == 1.0 and fp32.accuracy >= 0.9
    assert int8.agreement >= 0.95, int8
    assert abs(int8.accuracy - fp32.accuracy) <= 0.02, (int8.accuracy, fp32.accuracy)
    assert cmp.row(qz.ORT_FP32).agreement >= 0.99  # the export itself changes nothing
    assert int8.size_mb < cmp.row(qz.ORT_FP32).size_mb
    assert {r.variant for r in cmp.rows} >= {qz.EAGER_FP32, qz.ORT_FP32, qz.INT8_STATIC, qz.INT8_DYNAMIC}
    # the downloadable INT8 file is the one measured: it loads and gives the same answers
    from core import export

    session = export.ort_session(cmp.int8_onnx, threads=1)
    pred = export.ort_run(session, evals.x[:64]).argmax(1)
    ref = qz.predict(clf.model, evals.x[:64])[0]
    assert (pred == ref).mean() >= 0.95
    rows = cmp.to_rows()
    assert [r["variant"] for r in rows] == [r.variant for r in cmp.rows]
    assert rows[0]["eval_images"] == 400 and rows[0]["calibration_images"] == 16


def test_weight_bit_curve_degrades_as_bits_fall(shapes):
    clf, evals, _ = shapes
    points = {p.bits: p for p in qz.degradation_curve(clf.model, evals, bits=(8, 6, 4, 3, 2))}
    assert points[32].agreement == 1.0
    assert points[8].agreement >= 0.98
    assert points[2].agreement < points[8].agreement - 0.2  # 2-bit is clearly worse
    assert points[2].accuracy < points[8].accuracy - 0.2
    for hi, lo in ((8, 6), (6, 4), (4, 3), (3, 2)):  # monotone, give or take a few images
        assert points[lo].agreement <= points[hi].agreement + 0.02, (hi, lo)


# --- ResNet-18's architecture: the size effect -------------------------------------------------


def test_resnet18_int8_is_about_four_times_smaller():
    from core.classifier import Classifier
    from models import registry

    clf = Classifier.imagenet(registry.for_inference(registry.build_architecture("resnet18")),
                              registry.categories("resnet18"))
    calib = qz.imagenet_calibration(clf, 4)
    assert calib.shape == (4, 3, 224, 224)
    cmp = qz.compare(clf.model, calib=calib, evals=None, threads=1, repeats=1, warmup=0,
                     name="resnet18-untrained", weights=qz.UNTRAINED)
    fp32, ort32, int8 = cmp.row(qz.EAGER_FP32), cmp.row(qz.ORT_FP32), cmp.row(qz.INT8_STATIC)
    assert 40 < fp32.size_mb < 50
    assert fp32.size_mb / int8.size_mb >= 3.8
    assert ort32.size_mb / int8.size_mb >= 3.8
    assert cmp.row(qz.INT8_DYNAMIC).size_mb < fp32.size_mb / 3.8
    assert all(r.agreement is None and r.accuracy is None for r in cmp.rows)  # untrained: no agreement claimed
    assert len(cmp.int8_onnx) / 1e6 == pytest.approx(int8.size_mb)


def test_imagenet_evaluation_set_is_the_sample_photos_plus_variants():
    """The bit-width curve's small set (the INT8 measurement's 130 photos: tests/test_photo_int8.py)."""
    from core.classifier import Classifier
    from core.images import SAMPLES, load_sample
    from models import registry

    clf = Classifier.imagenet(registry.build_architecture("resnet18"), registry.categories("resnet18"))
    active = load_sample("chelsea").work
    evals = qz.imagenet_eval(clf, active, "Chelsea")
    n_photos = sum(1 for _, f in SAMPLES.values() if f is not None) + len(qz.SKLEARN_PHOTOS)
    assert evals.x.shape == (n_photos + len(qz.variants(active)), 3, 224, 224)
    assert evals.labels is None and len(evals.names) == len(evals)
    assert evals.names[n_photos] == "Chelsea · original" and evals.names[n_photos - 1] == "flower"
    np.testing.assert_allclose(evals.x[n_photos], clf.tensor(active)[0].numpy(), atol=1e-6)  # the original first


def test_narrowest_channel_skips_dead_filters():
    w = np.stack([np.zeros((1, 3, 3)), np.full((1, 3, 3), 1e-8), np.full((1, 3, 3), 0.01),
                  np.full((1, 3, 3), 0.5)]).astype(np.float32)
    assert qz.narrowest_channel(w) == 2  # not the all-zero nor the ~1e-8 one (as in EfficientNet-Lite0)
    assert qz.narrowest_channel(np.zeros((3, 4), np.float32)) == 0


# --- GPU ----------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_rows_fp16_bf16(shapes):
    clf, evals, calib = shapes
    # PyTorch rows only: older torch builds cannot export the shapes CNN's adaptive max pool to ONNX
    cmp = qz.compare(clf.model, calib=calib, evals=evals, threads=1, repeats=3, warmup=1, device="cuda",
                     int8=False, name="shapes-cnn")
    assert not cmp.has(qz.INT8_STATIC) and cmp.int8_onnx == b""
    fp32, fp16, nchw = cmp.row(qz.GPU_FP32), cmp.row(qz.GPU_FP16), cmp.row(qz.GPU_FP16_NCHW)
    assert fp32.device == torch.cuda.get_device_name(0) != cmp.row(qz.EAGER_FP32).device
    assert fp16.size_mb < 0.6 * fp32.size_mb and nchw.size_mb == fp16.size_mb
    assert fp16.agreement >= 0.98 and fp32.agreement >= 0.99
    assert fp32.peak_mb is not None and fp32.peak_mb > 0
    if torch.cuda.is_bf16_supported():
        assert cmp.row(qz.GPU_BF16).agreement >= 0.95


# --- the page -----------------------------------------------------------------------------------


def _df_rows(frame) -> list[dict]:
    return frame.to_dict("records")


def test_page_shapes_curve_slider_and_measurement(trained_models):
    """The shapes CNN (sidebar choice, ?clf=shapes-cnn): labelled crops, so accuracy too."""
    from tests.test_pages import _page

    at = _page(PAGE, clf="shapes-cnn")
    assert not at.exception, [e.value for e in at.exception]
    assert any(c.value.startswith("🧠 Model: **Shapes CNN") for c in at.caption)
    metric = {m.label: m.value for m in at.metric}
    assert metric["Agreement at 8 bits"].endswith("%")
    at.slider(key="quant.bits").set_value(2).run()
    assert not at.exception
    metric2 = {m.label: m.value for m in at.metric}
    assert float(metric2["Agreement at 2 bits"].rstrip("%")) < float(metric["Agreement at 8 bits"].rstrip("%"))
    assert at.query_params["bits"] in ("2", ["2"])
    at.radio(key="quant.threads").set_value(1).run()
    at.checkbox(key="quant.big").uncheck().run()  # the ResNet-18 architecture's export has its own test
    at.button(key="quant.measure").click().run()
    assert not at.exception, [e.value for e in at.exception]
    tables = [_df_rows(d.value) for d in at.dataframe if "variant" in d.value.columns]
    assert tables, "no comparison table"
    by_variant = {r["variant"]: r for r in tables[0]}
    assert by_variant[qz.INT8_STATIC]["size (MB)"] < by_variant[qz.EAGER_FP32]["size (MB)"]
    assert by_variant[qz.INT8_STATIC]["agreement"] >= 0.95
    assert by_variant[qz.INT8_DYNAMIC]["size (MB)"] < by_variant[qz.EAGER_FP32]["size (MB)"]  # on by default
    assert any(m.label == "Same top-1 as FP32" for m in at.metric)
    bands = next(d.value for d in at.dataframe if "kept by INT8" in d.value.columns)
    assert bands["images"].sum() == 400  # every held-out crop in one band of FP32's margin


@pytest.mark.real_weights
def test_page_with_real_resnet18_int8_agrees(real_weights):
    """With ImageNet weights (?clf=resnet18) the page quantizes ResNet-18 itself, evaluated on the 130
    real photos: INT8 is >= 3.8x smaller and agrees with FP32 on >= 90 % of them."""
    real_weights("resnet18")
    from components import classifier as cc
    from components import quantization as cq
    from tests.test_pages import _page

    caches = (cc.classifier, cq.eval_set, cq.curve, cq.subject_answer, cq.histogram, cq.measure)
    for cache in caches:
        cache.clear()
    try:
        at = _page(PAGE, img="chelsea", clf="resnet18")
        assert not at.exception, [e.value for e in at.exception]
        assert not any("Offline demonstration" in i.value for i in at.info)
        assert "quant.big" not in {c.key for c in at.checkbox}  # no untrained ResNet-18 beside the real one
        at.radio(key="quant.threads").set_value(1).run()
        at.button(key="quant.measure").click().run()
        assert not at.exception, [e.value for e in at.exception]
        table = {r["variant"]: r for r in _df_rows(next(d.value for d in at.dataframe if "variant" in d.value.columns))}
        assert table[qz.EAGER_FP32]["size (MB)"] / table[qz.INT8_STATIC]["size (MB)"] >= 3.8
        assert table[qz.INT8_STATIC]["agreement"] >= 0.9
    finally:
        for cache in caches:
            cache.clear()
