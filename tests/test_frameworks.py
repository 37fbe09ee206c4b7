"""Frameworks (Q13, Q30): four runtimes of the same trained shapes CNN agree with eager, a
torch.compile failure is reported (not raised) and the other runtimes still run, and the
Keras listing is the PyTorch model layer for layer: same layers, same parameter count (by a
pure count from the listing), same logits when run in NumPy with converted weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import frameworks as fw
from core.classifier import Classifier, shape_sample

PAGE = "pages/16_Frameworks.py"
N = 16


@pytest.fixture(scope="module")
def clf(trained_shapes_cnn):
    from models import registry

    return Classifier.shapes(registry.for_inference(trained_shapes_cnn, "cpu"))


@pytest.fixture(scope="module")
def batch(clf):
    samples = [shape_sample(200 + i) for i in range(N)]
    return clf.tensor(np.stack([s.image for s in samples])), np.array([s.label for s in samples])


# --- the Keras listing ------------------------------------------------------------------


def test_keras_listing_has_the_pytorch_layers_one_for_one():
    from models.shapes_cnn import ShapesNet

    written = fw.layers_in_code(fw.KERAS_CODE)
    model = ShapesNet()
    assert fw.signatures(written) == fw.signatures(fw.torch_layers(model))
    assert [layer.kind for layer in written].count("Conv2D") == 4
    assert len(fw.layer_table(model)) == len(written)


def test_keras_listing_parameter_count_equals_the_pytorch_model():
    from models.shapes_cnn import ShapesNet

    model = ShapesNet()
    counts = fw.param_counts(fw.layers_in_code())
    assert counts["trainable"] == sum(p.numel() for p in model.parameters()) == 25_038
    running = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert counts["non_trainable"] == running == 240
    table = fw.layer_table(model)
    assert all(r["Keras trainable"] == r["PyTorch parameters"] for r in table)


def test_a_different_model_does_not_match_the_listing():
    from models.shapes_cnn import ShapesNet

    narrow = ShapesNet(width=4)
    assert fw.signatures(fw.torch_layers(narrow)) != fw.signatures(fw.layers_in_code())
    with pytest.raises(ValueError, match="does not match"):
        fw.layer_table(narrow)
    wrong_momentum = fw.KERAS_CODE.replace("momentum=0.9", "momentum=0.1", 1)
    assert fw.signatures(fw.layers_in_code(wrong_momentum)) != fw.signatures(fw.torch_layers(ShapesNet()))


@pytest.mark.parametrize("code,trainable,frozen", [
    # 5*5*1*4 + 4 (bias) = 104 ; 4*10 + 10 = 50
    ("keras.Sequential([keras.Input(shape=(32, 32, 1)), layers.Conv2D(4, 5), layers.GlobalMaxPooling2D(), "
     "layers.Dense(10)])", 154, 0),
    # 3*3*3*2 = 54 (no bias) ; BN: 2*2 trainable + 2*2 moving statistics ; Dense 2*3 no bias = 6
    ("keras.Sequential([keras.Input(shape=(None, None, 3)), layers.Conv2D(filters=2, kernel_size=3, use_bias=False), "
     "layers.BatchNormalization(), layers.ReLU(), layers.Flatten(), layers.Dense(3, use_bias=False)])", 64, 4),
    # kernel (1, 3): 1*3*2*5 + 5 = 35
    ("model = keras.Sequential([keras.Input(shape=(8, 8, 2)), layers.Conv2D(5, (1, 3))])", 35, 0),
])
def test_param_counts_by_hand(code, trainable, frozen):
    counts = fw.param_counts(fw.layers_in_code(code))
    assert (counts["trainable"], counts["non_trainable"]) == (trainable, frozen)


def test_listing_is_only_parsed_never_run():
    with pytest.raises(ValueError):  # arguments must be literals: nothing is evaluated
        fw.layers_in_code("keras.Sequential([layers.Dense(__import__('os').getpid())])")
    with pytest.raises(ValueError):
        fw.layers_in_code("keras.Sequential([some_layer])")
    with pytest.raises(ValueError, match="no parameter rule"):
        fw.param_counts(fw.layers_in_code("keras.Sequential([keras.Input(shape=(4, 4, 1)), layers.LSTM(3)])"))
    with pytest.raises(ValueError):
        fw.layers_in_code("print('no model here')")


def test_keras_listing_in_numpy_gives_the_pytorch_logits(clf, batch):
    x, _ = batch
    x = x[:4]
    with torch.inference_mode():
        want = clf.model(x).numpy()
    got = fw.keras_forward(fw.layers_in_code(), fw.keras_weights(clf.model), x.permute(0, 2, 3, 1).numpy())
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-4
    # the layouts matter: PyTorch's (out, in, kh, kw) kernels read as Keras's (kh, kw, in, out) do not work
    weights = fw.keras_weights(clf.model)
    weights[1] = [weights[1][0].transpose(1, 0, 2, 3)]  # swap kh and kw of the first kernel
    wrong = fw.keras_forward(fw.layers_in_code(), weights, x.permute(0, 2, 3, 1).numpy())
    assert np.abs(wrong - want).max() > 1e-2


# --- runtimes --------------------------------------------------------------------------


def test_explain_compile_error():
    assert "C++ compiler" in fw.explain_compile_error(RuntimeError("InvalidCxxCompiler: No working C++ compiler found"))
    plain = fw.explain_compile_error(ValueError("something else"))
    assert "other runtimes are unaffected" in plain and "ValueError" in plain


def test_a_failed_compile_is_reported_and_the_other_runtimes_still_run(clf, batch):
    x, _ = batch

    def no_compiler(gm, example_inputs):
        raise RuntimeError("CppCompileError: no C++ compiler on this host")

    comp = fw.compile_model(clf.model, x, backend=no_compiler)
    assert comp.fn is None and "C++ compiler" in comp.error
    runtimes = fw.build_runtimes(clf.model, x, device="cpu", compiled=comp)
    assert set(runtimes.fns) == {"eager", "torchscript", "onnxruntime"} and "compile" in runtimes.errors
    rows = fw.compare(runtimes, x, budget_s=0.05)
    by = {r["runtime"]: r for r in rows}
    assert by["torch.compile (inductor)"]["p50 ms"] is None and by["torch.compile (inductor)"]["error"]
    for name in ("PyTorch eager", "TorchScript (jit.trace)", "ONNX Runtime"):
        assert by[name]["p50 ms"] > 0 and by[name]["max |Δ logit| vs eager"] < 1e-4 and by[name]["same top-1"] == "100%"


def test_all_four_runtimes_agree_on_16_shape_images(clf, batch):
    """torch.compile (inductor, freezing) + TorchScript + ONNX Runtime vs eager: same top-1 on
    every image, max |Δ logit| < 1e-4. Compiling takes 5-15 s on 2 cores (not @slow: under 30 s)."""
    x, labels = batch
    comp = fw.compile_model(clf.model, x, freezing=True)
    assert comp.error is None and comp.seconds > 0
    runtimes = fw.build_runtimes(clf.model, x, device="cpu", compiled=comp)
    outputs = fw.run_all(runtimes, x)
    assert set(outputs) == set(fw.RUNTIMES)
    ref = outputs["eager"]
    assert (ref.argmax(1) == labels).mean() >= 0.8  # the trained model, on images it never saw
    for name, out in outputs.items():
        assert out.shape == (N, 6)
        assert (out.argmax(1) == ref.argmax(1)).all(), name
        assert np.abs(out - ref).max() < 1e-4, name


def test_each_compile_gets_its_own_graph(clf, batch):
    """A second compile of the same network (other freezing setting) really compiles: torch.compile
    caches per code object, and compile_model gives every copy a fresh one."""
    from torch._dynamo.utils import counters

    x, _ = batch
    x = x[:2]
    before = counters["stats"]["unique_graphs"]
    a = fw.compile_model(clf.model, x, freezing=False)
    b = fw.compile_model(clf.model, x, freezing=True)
    assert a.error is None and b.error is None
    assert counters["stats"]["unique_graphs"] - before == 2
    with torch.inference_mode():
        assert torch.allclose(a.fn(x), b.fn(x), atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runtimes_on_cuda(trained_shapes_cnn):
    import copy

    from models import registry

    gpu = Classifier.shapes(registry.for_inference(copy.deepcopy(trained_shapes_cnn), "cuda"))
    x = gpu.tensor(np.stack([shape_sample(s).image for s in range(N)]))
    comp = fw.compile_model(gpu.model, x.cuda(), freezing=True)
    runtimes = fw.build_runtimes(gpu.model, x.cuda(), device="cuda", compiled=comp)
    rows = fw.compare(runtimes, x, budget_s=0.2)
    assert all(r["same top-1"] == "100%" for r in rows if r["p50 ms"] is not None)


# --- the page --------------------------------------------------------------------------


def test_page_renders_offline_with_the_keras_check(trained_models):
    from tests.test_pages import _page

    at = _page(PAGE, batch="4", shape="10")
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PyTorch parameters"] == metrics["Keras trainable (from the listing)"] == "25,038"
    assert float(metrics["Keras listing vs PyTorch, max |Δ logit|"]) < 1e-4
    assert any("keras.Sequential" in c.value for c in at.code)
    assert any("class ShapesNet" in c.value for c in at.code)
    assert any("Not measured yet" in c.value for c in at.caption)


def test_page_measures_four_runtimes(trained_models):
    from tests.test_pages import _page

    at = _page(PAGE, batch="16", shape="20")
    at.button(key="fw.measure").click().run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(df.value for df in at.dataframe if "max |Δ logit| vs eager" in df.value.columns)
    assert len(table) == 4
    ok = table[table["error"] == ""]
    assert len(ok) >= 3  # torch.compile may fail on a host without a C++ compiler; then it says so
    assert (ok["max |Δ logit| vs eager"] < 1e-4).all() and (ok["same top-1"] == "100%").all()
    assert len(ok) == 4 or at.error
