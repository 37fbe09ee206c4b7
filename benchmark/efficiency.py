"""The efficiency pages' headline ratios, measured with the pages' own pure code.

* INT8 vs FP32 (``core.quantization.compare``, the Quantization page's code), on all CPU
  threads, batch 1 at 224 px:
  - EfficientNet-Lite0, the photo pages' classifier (real weights, always installed): size,
    speed, and top-1 agreement with FP32 on the page's 130 real photos (13 sample photos x 10
    variants), also split by FP32's top-1 margin over its runner-up;
  - ResNet-18 (pretrained where its weights are here, else the same architecture untrained:
    speed and size do not depend on the weight values): the speed figure issue 7 set;
  - the trained shapes CNN, whose agreement is measured on 400 held-out crops (an untrained
    network's agreement would mean nothing).
* Runtimes (``core.frameworks``): the shapes CNN on a batch of 16 shape canvases as PyTorch
  eager, torch.compile, TorchScript and ONNX Runtime: p50 and the ratio to eager.
* DDP scaling (``core.distributed``): 1, 2 and 4 worker processes training the shapes CNN
  (gloo, one thread each, 32 crops per worker per step): images/s and speed-up over one.

Each figure is the page's own computation, so the README's numbers are what a user sees.
"""

from __future__ import annotations

from typing import Callable

INT8_SPEEDUP, INT8_SIZE_RATIO, INT8_AGREEMENT = 2.5, 3.8, 0.95  # issue 7's figures to reach
EFFNET_SIZE_RATIO = 3.5  # the photo-classifier issue's goal for EfficientNet-Lite0 (agreement: INT8_AGREEMENT)


def _row(comp, runtime: str, precision: str):
    """The CPU row of ``comp`` for this runtime and precision (GPU rows name a CUDA device)."""
    for r in comp.rows:
        if r.runtime == runtime and r.precision == precision and "cuda" not in r.device.lower() \
                and "nvidia" not in r.device.lower():
            return r
    raise KeyError(f"{runtime} {precision}")


def _shapes_classifier():
    from core.classifier import Classifier
    from models import registry
    from models.shapes_cnn import load_shapes_cnn

    return Classifier.shapes(registry.for_inference(load_shapes_cnn(), "cpu"))


def quantization(log: Callable[[str], None] = print) -> dict:
    """INT8 (ONNX Runtime, static) vs FP32 (PyTorch eager) on the CPU, all threads, batch 1."""
    from core import quantization as qz
    from core.classifier import Classifier
    from core.devices import cpu_threads
    from models import registry

    out: dict = {"threads": cpu_threads()}
    pretrained = registry.get_spec("resnet18").is_present()
    model = registry.for_inference(registry.build_torchvision("resnet18") if pretrained
                                   else registry.build_architecture("resnet18"), "cpu")
    clf = Classifier.imagenet(model, registry.categories("resnet18"))
    weights = "pretrained" if pretrained else "untrained (same architecture)"
    log(f"  INT8 vs FP32: ResNet-18, {weights}…")
    comp = qz.compare(clf.model, calib=qz.imagenet_calibration(clf, qz.PHOTO_CALIBRATION),
                      evals=qz.photo_eval(clf) if pretrained else None, name="resnet18", weights=weights, repeats=20)
    fp32, ort32 = _row(comp, "PyTorch", "FP32"), _row(comp, "ONNX Runtime", "FP32")
    int8, dyn = _row(comp, "ONNX Runtime", "INT8 static"), _row(comp, "ONNX Runtime", "INT8 dynamic")
    out["resnet18"] = {
        "weights": weights, "device": fp32.device,
        "fp32": fp32.p50, "fp32_p95": fp32.p95, "ort_fp32": ort32.p50, "int8": int8.p50, "int8_p95": int8.p95,
        "int8_dynamic": dyn.p50, "speedup": fp32.p50 / int8.p50, "speedup_vs_ort_fp32": ort32.p50 / int8.p50,
        "fp32_mb": fp32.size_mb, "int8_mb": int8.size_mb, "size_ratio": fp32.size_mb / int8.size_mb,
        "agreement": int8.agreement, "n_eval": comp.n_eval,
    }
    out["efficientnet_lite0"] = efficientnet_int8(log)
    log("  INT8 vs FP32: the trained shapes CNN on 400 held-out crops…")
    shapes = _shapes_classifier()
    comp = qz.compare(shapes.model, calib=qz.shapes_calibration(shapes, 32), evals=qz.shapes_eval(shapes, 400),
                      name="shapes-cnn", weights="trained here", repeats=20)
    fp32, int8 = _row(comp, "PyTorch", "FP32"), _row(comp, "ONNX Runtime", "INT8 static")
    out["shapes_cnn"] = {"agreement": int8.agreement, "fp32_accuracy": fp32.accuracy,
                         "int8_accuracy": int8.accuracy, "n_eval": comp.n_eval,
                         "fp32_mb": fp32.size_mb, "int8_mb": int8.size_mb}
    return out


def efficientnet_int8(log: Callable[[str], None] = print, *, repeats: int = 20) -> dict:
    """EfficientNet-Lite0 (real weights): INT8 static and dynamic vs FP32, agreement on 130 real photos."""
    from core import quantization as qz
    from core.classifier import Classifier
    from models import registry

    name = "efficientnet_lite0"
    spec = registry.get_spec(name)
    clf = Classifier.imagenet(registry.for_inference(registry.load_model(name), "cpu"), registry.categories(name),
                              name=name, title=spec.title, mean=spec.mean, std=spec.std, input_size=spec.input_size)
    evals = qz.photo_eval(clf)
    log(f"  INT8 vs FP32: EfficientNet-Lite0 (pretrained) on {len(evals)} real photos…")
    comp = qz.compare(clf.model, calib=qz.imagenet_calibration(clf, qz.PHOTO_CALIBRATION), evals=evals,
                      name=name, weights="pretrained", repeats=repeats)
    fp32, ort32 = _row(comp, "PyTorch", "FP32"), _row(comp, "ONNX Runtime", "FP32")
    int8, dyn = _row(comp, "ONNX Runtime", "INT8 static"), _row(comp, "ONNX Runtime", "INT8 dynamic")
    answers = comp.answers
    flips = answers.flips(qz.INT8_STATIC)
    return {
        "weights": "pretrained", "device": fp32.device,
        "fp32": fp32.p50, "fp32_p95": fp32.p95, "ort_fp32": ort32.p50, "ort_fp32_p95": ort32.p95,
        "int8": int8.p50, "int8_p95": int8.p95, "int8_dynamic": dyn.p50, "int8_dynamic_agreement": dyn.agreement,
        "speedup": fp32.p50 / int8.p50, "speedup_vs_ort_fp32": ort32.p50 / int8.p50,
        "fp32_mb": fp32.size_mb, "ort_fp32_mb": ort32.size_mb, "int8_mb": int8.size_mb,
        "size_ratio": fp32.size_mb / int8.size_mb, "agreement": int8.agreement, "n_eval": comp.n_eval,
        "n_calib": comp.n_calib,
        "bands": [{k: b[k] for k in ("band", "images", "kept", "agreement")}
                  for b in answers.by_margin(qz.INT8_STATIC)],
        "max_changed_margin": float(answers.margin[flips].max()) if flips else None,
    }


def runtimes(log: Callable[[str], None] = print) -> dict:
    """The shapes CNN on 16 canvases as eager, torch.compile, TorchScript and ONNX Runtime."""
    import torch

    from core import frameworks as fw
    from core.classifier import shape_sample

    log("  Runtimes: eager, torch.compile, TorchScript, ONNX Runtime on the shapes CNN…")
    clf = _shapes_classifier()
    x = torch.cat([clf.tensor(shape_sample(seed).image) for seed in range(16)])
    compiled = fw.compile_model(clf.model, x, freezing=True)
    rows = fw.compare(fw.build_runtimes(clf.model, x, device="cpu", compiled=compiled), x, budget_s=3.0)
    eager = next(r for r in rows if r["runtime"] == "PyTorch eager")
    for r in rows:
        if r.get("p50 ms"):
            r["× eager"] = round(eager["p50 ms"] / r["p50 ms"], 2)
    return {"input": list(x.shape), "rows": rows, "compile_s": compiled.seconds}


def ddp(log: Callable[[str], None] = print, workers=(1, 2, 4), steps: int = 40) -> dict:
    """Images/s of 1, 2, 4 DDP worker processes (gloo, CPU, one thread each)."""
    from core import distributed as D

    data = D.make_data(1024, 256, 0)
    rows, base = [], None
    for n in workers:
        log(f"  DDP: {n} worker process(es)…")
        run = D.launch(D.Settings(world_size=n, batch=32, steps=steps, lr=1e-3), data=data, timeout_s=600)
        row = D.summary_row(D.summary(run, reference=base))
        base = base or run
        rows.append({"workers": n, **row})
    return {"steps": steps, "batch_per_worker": 32, "rows": rows}


def run(log: Callable[[str], None] = print) -> dict:
    out: dict = {}
    for name, part in (("quantization", quantization), ("runtimes", runtimes), ("ddp", ddp)):
        try:
            out[name] = part(log)
        except Exception as exc:  # one part failing must not lose the others' figures
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"  {name} failed: {out[name]['error']}")
    return out
