"""One small CNN, four runtimes, two frameworks.

The Frameworks page runs the project's trained shapes CNN (``models.shapes_cnn.ShapesNet``)
as PyTorch eager, ``torch.compile`` (inductor), TorchScript and ONNX Runtime, compares their
outputs and latency, and shows the same network written in Keras::

    comp = compile_model(model, x, freezing=True)     # Compiled(module | None, seconds, error)
    outs = run_all(runtimes, x)                       # {runtime: logits (N, C)}
    layers_in_code(KERAS_CODE)                        # the Keras listing's layers, parsed (ast)
    param_counts(layers_in_code(KERAS_CODE))          # trainable / non-trainable, pure Python
    keras_forward(layers, keras_weights(model), x)    # the listing run in NumPy, NHWC

TensorFlow is not a dependency of this project and is never imported: the Keras listing is
checked by parsing it (its layers must be the PyTorch model's, layer by layer) and by
running it in NumPy with the PyTorch weights converted to Keras's layouts (channels-last
images, HWIO kernels, (in, out) dense kernels), which must give the same logits.

torch is imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import ast
import copy
import itertools
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

Progress = Callable[[float, str], None]
RUNTIMES = ("eager", "compile", "torchscript", "onnxruntime")

# --- the same model in Keras ----------------------------------------------------------

KERAS_CODE = '''\
import keras
from keras import layers

# ShapesNet from core/shapes_net.py, layer for layer, in Keras 3.
# Keras is channels-last: a batch of images is (N, H, W, 3), PyTorch's is (N, 3, H, W).
model = keras.Sequential([
    keras.Input(shape=(None, None, 3)),         # any image size: fully convolutional
    # block1: 3 -> 8 channels, then halve the size
    layers.Conv2D(8, 3, padding="same", use_bias=False),
    layers.BatchNormalization(momentum=0.9, epsilon=1e-05),
    layers.ReLU(),
    layers.MaxPooling2D(2),
    # block2: 8 -> 16
    layers.Conv2D(16, 3, padding="same", use_bias=False),
    layers.BatchNormalization(momentum=0.9, epsilon=1e-05),
    layers.ReLU(),
    layers.MaxPooling2D(2),
    # block3: 16 -> 32
    layers.Conv2D(32, 3, padding="same", use_bias=False),
    layers.BatchNormalization(momentum=0.9, epsilon=1e-05),
    layers.ReLU(),
    layers.MaxPooling2D(2),
    # block4: 32 -> 64, no pooling (the Grad-CAM layer)
    layers.Conv2D(64, 3, padding="same", use_bias=False),
    layers.BatchNormalization(momentum=0.9, epsilon=1e-05),
    layers.ReLU(),
    # head: "is this detector firing anywhere?", then 6 logits
    layers.GlobalMaxPooling2D(),                # = AdaptiveMaxPool2d(1) + Flatten
    layers.Dense(6),
], name="shapes_net")

model.compile(optimizer=keras.optimizers.AdamW(1e-2, weight_decay=1e-4),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
# model.fit(train_ds, epochs=5)  # train_ds: a tf.data.Dataset of (image / 255 - 0.5) / 0.25, label
'''

# Keras's default arguments, where they decide the parameter count or the function computed.
_DEFAULTS = {"Conv2D": {"use_bias": True, "padding": "valid", "strides": 1},
             "BatchNormalization": {"momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True},
             "Dense": {"use_bias": True}}


@dataclass(frozen=True)
class Layer:
    """One Keras layer as written: class name, positional and keyword arguments."""

    kind: str
    args: tuple = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    source: str = field(default="", compare=False)  # the code it was parsed from

    def get(self, name: str, position: int | None = None):
        kw = dict(self.kwargs)
        if name in kw:
            return kw[name]
        if position is not None and position < len(self.args):
            return self.args[position]
        return _DEFAULTS.get(self.kind, {}).get(name)

    def signature(self) -> tuple:
        """What decides the computation: the kind and every argument, defaults filled in."""
        if self.kind == "Conv2D":
            return (self.kind, self.get("filters", 0), self.get("kernel_size", 1), self.get("padding"),
                    self.get("strides"), self.get("use_bias"))
        if self.kind == "BatchNormalization":
            return (self.kind, round(float(self.get("momentum")), 6), float(self.get("epsilon")))
        if self.kind == "MaxPooling2D":
            return (self.kind, self.get("pool_size", 0))
        if self.kind == "Dense":
            return (self.kind, self.get("units", 0), self.get("use_bias"))
        if self.kind == "Input":
            return (self.kind, tuple(self.get("shape", 0)))
        return (self.kind,)


def layers_in_code(code: str = KERAS_CODE) -> list[Layer]:
    """The layers of the first ``keras.Sequential([...])`` in ``code``, parsed with ``ast``
    (literal arguments only: the listing is checked, never executed)."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) == "Sequential" and node.args:
            items = node.args[0]
            if not isinstance(items, ast.List):
                raise ValueError("Sequential's first argument is not a list literal")
            out = []
            for item in items.elts:
                if not isinstance(item, ast.Call):
                    raise ValueError(f"not a layer call: {ast.unparse(item)}")
                out.append(Layer(_name(item.func), tuple(ast.literal_eval(a) for a in item.args),
                                 tuple((k.arg, ast.literal_eval(k.value)) for k in item.keywords),
                                 ast.unparse(item)))
            return out
    raise ValueError("no keras.Sequential([...]) in the code")


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def layer_params(layers: list[Layer]) -> list[tuple[int, int]]:
    """(trainable, non-trainable) parameters of each layer of a Sequential stack, computed from
    the layer list alone, as Keras counts them."""
    channels = None
    out = []
    for layer in layers:
        trainable = non_trainable = 0
        if layer.kind == "Input":
            channels = int(layer.get("shape", 0)[-1])
        elif layer.kind == "Conv2D":
            k = layer.get("kernel_size", 1)
            kh, kw = (k, k) if isinstance(k, int) else k
            filters = int(layer.get("filters", 0))
            trainable = kh * kw * channels * filters + (filters if layer.get("use_bias") else 0)
            channels = filters
        elif layer.kind == "BatchNormalization":
            trainable = channels * (int(bool(layer.get("center"))) + int(bool(layer.get("scale"))))
            non_trainable = 2 * channels
        elif layer.kind == "Dense":
            units = int(layer.get("units", 0))
            trainable = channels * units + (units if layer.get("use_bias") else 0)
            channels = units
        elif layer.kind not in ("ReLU", "MaxPooling2D", "GlobalMaxPooling2D", "Flatten"):
            raise ValueError(f"no parameter rule for {layer.kind}")
        out.append((trainable, non_trainable))
    return out


def param_counts(layers: list[Layer]) -> dict[str, int]:
    """Keras's parameter counts for a Sequential stack, computed from the layer list alone.

    ``trainable`` is what PyTorch calls parameters (``sum(p.numel())``); ``non_trainable``
    is BatchNormalization's moving mean and variance (PyTorch's ``running_mean`` and
    ``running_var`` buffers), which Keras counts in ``model.count_params()``."""
    per = layer_params(layers)
    trainable, non_trainable = sum(t for t, _ in per), sum(n for _, n in per)
    return {"trainable": trainable, "non_trainable": non_trainable, "total": trainable + non_trainable}


def torch_pairs(model) -> list[tuple[str, Layer]]:
    """(PyTorch module, the Keras layer it corresponds to) for a model's leaf modules, in order.

    Conv2d(k, padding=k//2, stride 1) -> Conv2D(padding="same"); BatchNorm2d -> Keras
    momentum = 1 - PyTorch momentum (they weight the opposite term) and the same epsilon;
    AdaptiveMaxPool2d(1) + Flatten -> GlobalMaxPooling2D; Linear -> Dense."""
    from torch import nn

    leaves = [m for m in model.modules() if not list(m.children())]
    first = next((m for m in leaves if isinstance(m, nn.Conv2d)), None)
    out = [("input tensor (N, 3, H, W)", Layer("Input", kwargs=(("shape", (None, None, first.in_channels if first else 3)),)))]
    i = 0
    while i < len(leaves):
        m, desc = leaves[i], repr(leaves[i])
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0]
            if m.kernel_size != (k, k) or m.stride != (1, 1) or m.padding != (k // 2, k // 2) or m.groups != 1:
                raise ValueError(f"no Keras rule for {m}")
            layer = Layer("Conv2D", (m.out_channels, k), (("padding", "same"), ("use_bias", m.bias is not None)))
        elif isinstance(m, nn.BatchNorm2d):
            layer = Layer("BatchNormalization", (), (("momentum", round(1 - m.momentum, 6)), ("epsilon", m.eps)))
        elif isinstance(m, nn.ReLU):
            layer = Layer("ReLU")
        elif isinstance(m, nn.MaxPool2d):
            size = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            layer = Layer("MaxPooling2D", (size,))
        elif isinstance(m, nn.AdaptiveMaxPool2d) and m.output_size in (1, (1, 1)):
            if i + 1 < len(leaves) and isinstance(leaves[i + 1], nn.Flatten):
                desc += " + Flatten()"
                i += 1
            layer = Layer("GlobalMaxPooling2D")
        elif isinstance(m, nn.Linear):
            layer = Layer("Dense", (m.out_features,), (("use_bias", m.bias is not None),))
        else:
            raise ValueError(f"no Keras rule for {type(m).__name__}")
        out.append((desc, layer))
        i += 1
    return out


def torch_layers(model) -> list[Layer]:
    """The Keras layers a PyTorch model's leaf modules correspond to (see :func:`torch_pairs`)."""
    return [layer for _, layer in torch_pairs(model)]


def layer_table(model, code: str = KERAS_CODE) -> list[dict]:
    """Side by side: each PyTorch module, the Keras line written for it, and their parameters.

    Raises ValueError if the listing and the model do not have the same layers."""
    pairs, written = torch_pairs(model), layers_in_code(code)
    if signatures([layer for _, layer in pairs]) != signatures(written):
        raise ValueError("the Keras listing does not match the PyTorch model layer for layer")
    leaves = [m for m in model.modules() if not list(m.children()) and type(m).__name__ != "Flatten"]
    rows = []
    for (desc, _), layer, (trainable, frozen), module in zip(pairs, written, layer_params(written), [None, *leaves]):
        torch_params = 0 if module is None else sum(p.numel() for p in module.parameters())
        rows.append({"PyTorch": desc, "Keras": layer.source, "PyTorch parameters": torch_params,
                     "Keras trainable": trainable, "Keras non-trainable": frozen})
    return rows


def signatures(layers: list[Layer]) -> list[tuple]:
    """Comparable per-layer descriptions (kind and every argument that changes the maths)."""
    return [layer.signature() for layer in layers]


def keras_weights(model) -> list[list[np.ndarray]]:
    """The PyTorch weights in Keras's layouts, one list per layer of :func:`torch_layers`
    (Input, ReLU and pooling layers get an empty list).

    Conv2D kernel (kh, kw, in, out) from PyTorch's (out, in, kh, kw); BatchNormalization
    [gamma, beta, moving_mean, moving_variance]; Dense [kernel (in, out), bias]."""
    from torch import nn

    leaves = [m for m in model.modules() if not list(m.children())]
    out: list[list[np.ndarray]] = [[]]  # Input
    for m in leaves:
        t = lambda p: p.detach().float().cpu().numpy()  # noqa: E731
        if isinstance(m, nn.Conv2d):
            w = [t(m.weight).transpose(2, 3, 1, 0)] + ([t(m.bias)] if m.bias is not None else [])
            out.append(w)
        elif isinstance(m, nn.BatchNorm2d):
            out.append([t(m.weight), t(m.bias), t(m.running_mean), t(m.running_var)])
        elif isinstance(m, nn.Linear):
            out.append([t(m.weight).T] + ([t(m.bias)] if m.bias is not None else []))
        elif isinstance(m, nn.Flatten):
            continue  # folded into GlobalMaxPooling2D
        else:
            out.append([])
    return out


def keras_forward(layers: list[Layer], weights: list[list[np.ndarray]], x_nhwc: np.ndarray) -> np.ndarray:
    """Run a parsed Keras Sequential stack in NumPy (float64) on channels-last images."""
    from numpy.lib.stride_tricks import sliding_window_view

    if len(layers) != len(weights):
        raise ValueError(f"{len(layers)} layers but {len(weights)} weight lists")
    x = np.asarray(x_nhwc, dtype=np.float64)
    for layer, w in zip(layers, weights):
        if layer.kind == "Conv2D":
            kernel = w[0].astype(np.float64)
            kh, kw = kernel.shape[:2]
            if layer.get("padding") == "same":
                x = np.pad(x, ((0, 0), (kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2), (0, 0)))
            win = sliding_window_view(x, (kh, kw), axis=(1, 2))  # (N, H, W, C, kh, kw), a view
            n, h, wd, c = win.shape[:4]
            cols = win.reshape(n * h * wd, c * kh * kw)  # im2col (one copy), then one matrix product
            x = (cols @ kernel.transpose(2, 0, 1, 3).reshape(c * kh * kw, -1)).reshape(n, h, wd, -1)
            if len(w) > 1:
                x = x + w[1]
        elif layer.kind == "BatchNormalization":
            gamma, beta, mean, var = (a.astype(np.float64) for a in w)
            x = (x - mean) / np.sqrt(var + float(layer.get("epsilon"))) * gamma + beta
        elif layer.kind == "ReLU":
            x = np.maximum(x, 0.0)
        elif layer.kind == "MaxPooling2D":
            p = int(layer.get("pool_size", 0))
            n, h, wd, c = x.shape
            x = x[:, :h // p * p, :wd // p * p].reshape(n, h // p, p, wd // p, p, c).max(axis=(2, 4))
        elif layer.kind == "GlobalMaxPooling2D":
            x = x.max(axis=(1, 2))
        elif layer.kind == "Dense":
            x = x @ w[0].astype(np.float64) + (w[1] if len(w) > 1 else 0.0)
        elif layer.kind != "Input":
            raise ValueError(f"cannot run {layer.kind}")
    return x


# --- the PyTorch runtimes -----------------------------------------------------------------

_fresh = itertools.count()


def _fresh_function(model) -> Callable:
    """``lambda x: model(x)`` with a code object of its own.

    torch.compile caches compiled graphs per code object: compiling a second copy of the
    same network (say, with freezing switched on) would silently reuse the first graph and
    report a compile time of almost nothing. A fresh code object per compiled model gets a
    compile of its own (and its own recompile limit)."""

    def run(x):
        return model(x)

    code = run.__code__.replace(co_name=f"compiled_{next(_fresh)}")
    return types.FunctionType(code, run.__globals__, code.co_name, None, run.__closure__)


@dataclass(eq=False)
class Compiled:
    fn: Callable | None  # the compiled callable, None when compiling failed
    seconds: float  # the first call: graph capture + inductor code generation + C++/Triton build
    error: str | None
    freezing: bool
    backend: str = "inductor"


def explain_compile_error(exc: BaseException) -> str:
    """A sentence for the page: why torch.compile failed, and what that means."""
    text = f"{type(exc).__name__}: {exc}".strip()
    first = text.splitlines()[0][:300]
    lowered = text.lower()
    if any(s in lowered for s in ("cxx", "c++ compiler", "cppcompileerror", "gcc", "clang", "compiler")):
        return ("torch.compile could not build its kernels: inductor writes C++ (CPU) or Triton (GPU) code "
                "and compiles it while the app runs, which needs a working C++ compiler on the server. "
                "Hosts without one (Streamlit Community Cloud, slim containers) cannot use it; the other "
                f"runtimes are unaffected. ({first})")
    return f"torch.compile failed on this host; the other runtimes are unaffected. ({first})"


def compile_model(model, example, *, freezing: bool = True, backend: Any = "inductor") -> Compiled:
    """``torch.compile`` a private copy of ``model`` for inputs shaped like ``example`` and make
    the first call (where the compilation really happens), timing it.

    ``freezing`` (inductor): weights become constants of the graph, so conv+BN folding and
    weight pre-packing happen once at compile time; for inference only. Any failure (no C
    compiler, a backend error) comes back as ``Compiled(fn=None, error=...)``, never raised."""
    import torch

    from core.perf import synchronize

    device = str(example.device)
    name = backend if isinstance(backend, str) else getattr(backend, "__name__", "custom")
    t0 = time.perf_counter()
    try:
        private = copy.deepcopy(model).eval()
        fn = torch.compile(_fresh_function(private), backend=backend, dynamic=False)
        with torch._inductor.config.patch(freezing=bool(freezing)), torch.inference_mode():
            fn(example)
            synchronize(device)
    except Exception as exc:  # noqa: BLE001 - any compiler failure is reported, never raised
        return Compiled(None, time.perf_counter() - t0, explain_compile_error(exc), bool(freezing), name)
    return Compiled(fn, time.perf_counter() - t0, None, bool(freezing), name)


@dataclass(eq=False)
class Runtimes:
    """Callables ``x (CPU tensor) -> logits (numpy)`` per runtime, and what building each cost."""

    fns: dict[str, Callable]
    build_seconds: dict[str, float]
    errors: dict[str, str]
    devices: dict[str, str]  # where each runtime runs


def build_runtimes(model, example, *, device: str = "cpu", compiled: Compiled | None = None,
                   arts=None, threads: int | None = None, progress: Progress | None = None) -> Runtimes:
    """Eager (the shared model, under its lock), ``compiled``, TorchScript and ONNX Runtime.

    ``example`` is a batch shaped like the inputs that will be run (``compiled`` must have
    been made for that shape). ``arts`` (a ``core.deploy.Artifacts``) reuses an export already
    made; otherwise the model is traced and exported here."""
    import torch

    from core import deploy
    from core.hooks import lock_for

    report = progress or (lambda f, t: None)
    lock = lock_for(model)

    def eager(x):
        with lock, torch.inference_mode():
            return model(x.to(device)).float().cpu().numpy()

    fns: dict[str, Callable] = {"eager": eager}
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    devices = {"eager": device}
    if compiled is not None:
        seconds["compile"] = compiled.seconds
        devices["compile"] = device
        if compiled.fn is None:
            errors["compile"] = compiled.error or "torch.compile failed"
        else:
            def comp(x, fn=compiled.fn):
                with torch.inference_mode():
                    return fn(x.to(device)).float().cpu().numpy()

            fns["compile"] = comp
    report(0.4, "Tracing to TorchScript and exporting to ONNX…")
    if arts is None:
        arts = deploy.export_artifacts(model, example, device=device, threads=threads)
    seconds["torchscript"], seconds["onnxruntime"] = arts.seconds["torchscript"], arts.seconds["onnx"]
    other = deploy.runners(model, arts, device)
    fns["torchscript"] = other["torchscript"]
    devices["torchscript"] = device
    if "onnxruntime" in other:
        fns["onnxruntime"] = other["onnxruntime"]
        devices["onnxruntime"] = arts.ort_device
    else:
        errors["onnxruntime"] = arts.errors.get("onnx", "ONNX export failed")
    return Runtimes(fns, seconds, errors, devices)


def run_all(runtimes: Runtimes, x) -> dict[str, np.ndarray]:
    """Logits of every working runtime on ``x`` (CPU tensor)."""
    return {name: fn(x) for name, fn in runtimes.fns.items()}


def compare(runtimes: Runtimes, x, *, progress: Progress | None = None, deadline=None,
            budget_s: float = 1.5) -> list[dict]:
    """One row per runtime: max |Δ logit| vs eager, same top-1, p50/p95 latency (ms)."""
    from core import deploy

    report = progress or (lambda f, t: None)
    x = x.detach().cpu()
    outputs = run_all(runtimes, x)
    agree = {a.runtime: a for a in deploy.agreement(outputs)}
    rows = []
    names = [r for r in RUNTIMES if r in runtimes.fns or r in runtimes.errors]
    for i, name in enumerate(names):
        if deadline is not None:
            deadline.check()
        report(i / len(names), f"Timing {deploy.RUNTIME_TITLES[name]}…")
        row = {"runtime": deploy.RUNTIME_TITLES[name], "device": runtimes.devices.get(name, "—")}
        if name in runtimes.fns:
            t = deploy.timed(lambda fn=runtimes.fns[name]: fn(x), runtimes.devices[name], budget_s=budget_s)
            a = agree[name]
            row.update({"max |Δ logit| vs eager": a.max_abs_diff, "same top-1": f"{a.same_top1:.0%}",
                        "p50 ms": round(t.p50, 2), "p95 ms": round(t.p95, 2), "runs": t.n})
        else:
            row.update({"max |Δ logit| vs eager": None, "same top-1": "—", "p50 ms": None, "p95 ms": None,
                        "runs": 0})
        row["build s"] = None if name == "eager" else round(runtimes.build_seconds.get(name, 0.0), 2)
        row["error"] = runtimes.errors.get(name, "")
        rows.append(row)
    report(1.0, "Done")
    return rows


# --- PyTorch vs TensorFlow, concept by concept ----------------------------------------------

CONCEPTS: tuple[tuple[str, str, str], ...] = (
    ("Default execution", "Eager: every line runs as Python executes it; graphs are opt-in "
     "(torch.compile, torch.export).", "Eager since TF 2; `@tf.function` traces a Python function into a "
     "graph, retracing for new input signatures."),
    ("Model building", "Subclass `nn.Module`, create layers in `__init__`, write `forward`.",
     "`keras.Sequential`, the functional API, or subclass `keras.Model` / `keras.layers.Layer` with `call`."),
    ("Input shapes", "Layers are told their input channels (`Conv2d(3, 8, 3)`).",
     "Layers infer input sizes on first call (`Conv2D(8, 3)`); PyTorch's `LazyConv2d` does the same."),
    ("Image layout", "Channels-first NCHW by default; `channels_last` memory format is an opt-in optimisation.",
     "Channels-last NHWC by default (`data_format` can change it)."),
    ("Gradients", "Autograd records operations on tensors with `requires_grad`; `loss.backward()`.",
     "`tf.GradientTape` records inside its `with` block; `tape.gradient(loss, vars)`."),
    ("Training loop", "Written by you (or Lightning / Accelerate): zero_grad, forward, backward, step.",
     "`model.compile(...)` + `model.fit(...)`; custom loops with GradientTape when needed."),
    ("Input pipeline", "`Dataset` + `DataLoader` (worker processes, `pin_memory`); torchvision transforms.",
     "`tf.data` graphs (`map`, `batch`, `prefetch`, `AUTOTUNE`), run in C++ threads."),
    ("Graph compilation", "`torch.compile` (TorchDynamo captures Python bytecode, inductor generates "
     "C++/Triton kernels).", "`tf.function(jit_compile=True)` or Keras `jit_compile`: XLA fuses the graph."),
    ("Export for serving", "`torch.export` / ONNX; TorchScript (deprecated); TorchServe is in limited "
     "maintenance, so Triton or a plain web server runs ONNX Runtime or AOTInductor packages.",
     "SavedModel (graph + weights) served by TF Serving; the standard path for years."),
    ("Mobile / edge", "ExecuTorch (the successor of PyTorch Mobile); ONNX Runtime Mobile.",
     "TensorFlow Lite (now LiteRT), with its converter and INT8 quantisation; TF.js in the browser."),
    ("Multi-GPU training", "`DistributedDataParallel` (one process per GPU), FSDP for sharded models; torchrun.",
     "`tf.distribute` strategies (`MirroredStrategy`, `MultiWorkerMirroredStrategy`, TPUStrategy)."),
    ("Quantisation", "PT2E / torchao (the eager `torch.ao.quantization` API is deprecated); ONNX Runtime "
     "quantisation after export.", "TFLite converter post-training INT8, TF Model Optimization Toolkit (QAT)."),
    ("Hardware", "CUDA, ROCm, Apple MPS, CPU; TPUs through PyTorch/XLA.",
     "CUDA, CPU, TPUs natively (XLA); Apple via a plugin."),
    ("Ecosystem", "Most research code and new model releases (Hugging Face, timm, torchvision, Ultralytics).",
     "Production stacks built around TFX, TF Serving, TFLite; Keras 3 can also run on JAX or PyTorch."),
)
