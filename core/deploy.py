"""Shipping a trained classifier: export it, prove the export computes the same thing, time
it, and see what a serving pipeline that pre-processes differently does to its answers.

Used by the Deployment page (and, for the runtimes, by :mod:`core.frameworks`)::

    mistakes = preprocessing_mistakes(clf, rgb)        # correct pipeline vs common bugs
    pipeline_agreement(clf, photos)                    # how often each bug changes the answer
    arts = export_artifacts(clf.model, x, device=dev)  # TorchScript + ONNX (bytes, loaded runtimes)
    report = measure(clf.model, arts, x, device=dev)   # max |diff|, top-1, p50/p95, images/s

* TorchScript is made with ``torch.jit.trace``; torch 2.14 warns that it is deprecated
  (``torch.export`` and ONNX are the way forward), and :class:`Artifacts` keeps those
  warnings so the page can show them. The file is saved and loaded back before it is run:
  what is measured is what would be shipped.
* ONNX comes from :func:`core.export.export_onnx` (torch.onnx's ``torch.export``-based
  exporter, dynamic batch) and runs in ONNX Runtime from the file's bytes.
* The shared model is only read: tracing holds its lock (:func:`core.hooks.lock_for`) and
  every eager call in a timing loop takes it too, so another session's hooks never fire here.

torch, OpenCV and onnxruntime are imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import io
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.export import clean_error  # noqa: F401  (the pages and tests use it from here too)

Progress = Callable[[float, str], None]

CORRECT = "correct"
# Batch sizes of the throughput table. 8 and 16 are typical server micro-batches.
BATCHES = (1, 8, 16)
RUNTIME_TITLES = {"eager": "PyTorch eager", "torchscript": "TorchScript (jit.trace)",
                  "onnxruntime": "ONNX Runtime", "compile": "torch.compile (inductor)"}


def _nothing(fraction: float, text: str) -> None:
    return None


# --- pre-processing mistakes -----------------------------------------------------------


@dataclass(frozen=True)
class Pipeline:
    key: str
    title: str
    what: str  # one sentence: what the serving code did differently


def pipelines(kind: str) -> tuple[Pipeline, ...]:
    """The correct pipeline first, then the mistakes that make sense for this classifier kind.

    ImageNet (EfficientNet-Lite0, ResNet-18..., 224 px): colour order, normalisation, another
    model's mean/std, crop instead of whole-image resize, nearest-neighbour resampling, and the
    HWC->CHW reshape bug. Shapes CNN (runs at the image's own size): colour order,
    normalisation, shrinking to its 64-px training-crop size (what
    ``models.shapes_cnn.preprocess`` does) and the reshape bug. Every pipeline normalises with
    the classifier's own ``mean``/``std`` (EfficientNet-Lite0: 0.5 / 0.5) except the mistakes
    that are about exactly that."""
    common_first = (
        Pipeline(CORRECT, "Correct pipeline", "RGB, the training resize, /255, then (x − mean) / std."),
        Pipeline("bgr", "BGR instead of RGB", "Channels in OpenCV's order (cv2.imread/VideoCapture give BGR)."),
        Pipeline("no_norm", "No mean/std normalisation", "Pixels scaled to [0, 1] but the mean/std step forgotten."),
    )
    reshape = Pipeline("reshape", "reshape instead of permute",
                       "HWC array turned into CHW with .reshape(3, H, W) instead of .permute(2, 0, 1).")
    if kind == "imagenet":
        return (*common_first,
                Pipeline("stats", "Another model's mean/std",
                         "Normalised with statistics copied from a different model's code: torchvision's ImageNet "
                         "mean/std (0.485, 0.456, 0.406 / 0.229, 0.224, 0.225) for a network trained with "
                         "0.5 / 0.5 such as EfficientNet-Lite0, or 0.5 / 0.5 for one trained with ImageNet's."),
                Pipeline("crop", "Centre crop instead of whole-image resize",
                         "Short side to 256 then the central 224×224 (torchvision's evaluation recipe); "
                         "this app validated the model with the whole image squashed to 224×224."),
                Pipeline("nearest", "Nearest-neighbour resize",
                         "Same 224×224 size, but resampled with INTER_NEAREST instead of area averaging."),
                reshape)
    return (*common_first,
            Pipeline("small", "Resized to the 64-px training-crop size",
                     "The training code's preprocess squeezes every image to 64×64: on a 160-px canvas the "
                     "shape shrinks to 14–22 px, far smaller than the shapes it learnt."),
            reshape)


def _resize(rgb: np.ndarray, size: tuple[int, int], interpolation=None) -> np.ndarray:
    import cv2

    if interpolation is None:
        interpolation = cv2.INTER_AREA if min(rgb.shape[:2]) > min(size) else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(rgb), (size[1], size[0]), interpolation=interpolation)


def _centre_crop(rgb: np.ndarray, resize_to: int = 256, crop: int = 224) -> np.ndarray:
    h, w = rgb.shape[:2]
    scale = resize_to / min(h, w)
    nh, nw = max(crop, round(h * scale)), max(crop, round(w * scale))
    out = _resize(rgb, (nh, nw))
    top, left = (nh - crop) // 2, (nw - crop) // 2
    return out[top:top + crop, left:left + crop]


OTHER_STATS = (0.5, 0.5, 0.5)  # what "stats" uses for a model trained with ImageNet's mean/std


def wrong_stats(clf) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of the "another model's mean/std" mistake: ImageNet's for a model trained
    with other statistics (EfficientNet-Lite0's 0.5 / 0.5), 0.5 / 0.5 for one trained with ImageNet's."""
    from core.classifier import IMAGENET_MEAN, IMAGENET_STD

    if tuple(clf.mean) == tuple(IMAGENET_MEAN) and tuple(clf.std) == tuple(IMAGENET_STD):
        return OTHER_STATS, OTHER_STATS
    return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD)


def model_input(clf, rgb: np.ndarray, key: str):
    """The (1, 3, H, W) float tensor the model receives from pipeline ``key`` for one RGB image.

    ``CORRECT`` is exactly ``clf.tensor(rgb)``, normalised with the classifier's own mean/std;
    each other key reproduces one serving bug."""
    import cv2
    import torch

    rgb = np.ascontiguousarray(rgb[..., :3])
    if key == CORRECT:
        return clf.tensor(rgb)
    if key == "bgr":
        return clf.tensor(np.ascontiguousarray(rgb[..., ::-1]))
    if key == "no_norm":
        return clf.unit(rgb)
    if key == "stats":
        mean, std = wrong_stats(clf)
        unit = clf.unit(rgb)
        return (unit - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    if key == "crop":
        return clf.normalise(_to_unit(_centre_crop(rgb, 256, clf.input_size or 224)))
    if key == "nearest":
        side = clf.input_size or min(rgb.shape[:2])
        return clf.normalise(_to_unit(cv2.resize(rgb, (side, side), interpolation=cv2.INTER_NEAREST)))
    if key == "small":
        return clf.normalise(_to_unit(_resize(rgb, (64, 64))))
    if key == "reshape":
        sized = clf.resize(rgb)
        h, w = sized.shape[:2]
        scrambled = torch.from_numpy(np.ascontiguousarray(sized)).reshape(1, 3, h, w).float().div(255.0)
        return clf.normalise(scrambled)
    raise KeyError(f"unknown pipeline {key!r}")


def _to_unit(rgb: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div(255.0)


def as_seen(clf, x) -> np.ndarray:
    """What a tensor "looks like" to the model: undo the *correct* normalisation and show it.

    The correct pipeline gives back the resized photo; a mistake shows the image the model
    effectively received (swapped colours, a washed-out grey picture, a scrambled one...)."""
    import torch

    mean = torch.tensor(clf.mean, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(clf.std, dtype=x.dtype).view(1, 3, 1, 1)
    return clf.to_rgb((x.detach().cpu() * std + mean).clamp(0, 1))


@dataclass(frozen=True)
class MistakeRow:
    key: str
    title: str
    what: str
    top_name: str
    top_prob: float
    prob_of_correct: float  # probability this pipeline gives the correct pipeline's top class
    same_answer: bool
    input_shape: tuple[int, ...]
    max_input_change: float | None  # max |x - x_correct| where shapes match, else None
    seen: np.ndarray = field(repr=False)  # RGB uint8: as_seen(...)

    def as_row(self) -> dict[str, Any]:
        return {"pipeline": self.title, "top1": self.top_name, "confidence": round(self.top_prob, 4),
                "p(correct class)": round(self.prob_of_correct, 4), "same answer": self.same_answer,
                "input": "×".join(map(str, self.input_shape[-2:])),
                "max input change": None if self.max_input_change is None else round(self.max_input_change, 4)}


def preprocessing_mistakes(clf, rgb: np.ndarray) -> list[MistakeRow]:
    """Run the classifier on the tensor each pipeline produces (correct one first)."""
    import torch

    from core.hooks import lock_for

    device = next(clf.model.parameters()).device
    inputs = {p.key: model_input(clf, rgb, p.key) for p in pipelines(clf.kind)}
    probs = {}
    with lock_for(clf.model), torch.inference_mode():
        for key, x in inputs.items():
            probs[key] = torch.softmax(clf.model(x.to(device)).float(), 1)[0].cpu().numpy()
    ref_x, ref_p = inputs[CORRECT], probs[CORRECT]
    ref_top = int(np.argmax(ref_p))
    rows = []
    for p in pipelines(clf.kind):
        x, pr = inputs[p.key], probs[p.key]
        top = int(np.argmax(pr))
        change = float((x - ref_x).abs().max()) if x.shape == ref_x.shape else None
        rows.append(MistakeRow(p.key, p.title, p.what, clf.categories[top], float(pr[top]), float(pr[ref_top]),
                               top == ref_top, tuple(x.shape), change, as_seen(clf, x)))
    return rows


def pipeline_accuracy(clf, images: list[np.ndarray], labels: list[int]) -> list[dict]:
    """For labelled images (same size): each pipeline's accuracy and how often its answer
    differs from the correct pipeline's. One batched forward pass per pipeline."""
    import torch

    from core.hooks import lock_for

    device = next(clf.model.parameters()).device
    truth = np.asarray(labels)
    answers = {}
    with lock_for(clf.model), torch.inference_mode():
        for p in pipelines(clf.kind):
            x = torch.cat([model_input(clf, img, p.key) for img in images])
            answers[p.key] = clf.model(x.to(device)).argmax(1).cpu().numpy()
    titles = {p.key: p.title for p in pipelines(clf.kind)}
    return [{"pipeline": titles[k], "accuracy": float((a == truth).mean()),
             "answer differs from correct pipeline": float((a != answers[CORRECT]).mean())}
            for k, a in answers.items()]


def pipeline_agreement(clf, images: list[np.ndarray]) -> list[dict]:
    """For unlabelled photos (any sizes): how often each pipeline gives the correct pipeline's
    top-1, and the mean probability it leaves on that class (vs the correct pipeline's own)."""
    import torch

    from core.hooks import lock_for

    device = next(clf.model.parameters()).device
    probs = {}
    with lock_for(clf.model), torch.inference_mode():
        for p in pipelines(clf.kind):
            x = torch.cat([model_input(clf, img, p.key) for img in images])
            probs[p.key] = torch.softmax(clf.model(x.to(device)).float(), 1).cpu().numpy()
    ref = probs[CORRECT].argmax(1)
    rows = np.arange(len(images))
    return [{"pipeline": p.title, "same answer as correct": float((probs[p.key].argmax(1) == ref).mean()),
             "mean p(correct class)": float(probs[p.key][rows, ref].mean())} for p in pipelines(clf.kind)]


# --- export ---------------------------------------------------------------------------


@dataclass(eq=False)
class Artifacts:
    """The exported model files and the runtimes loaded back from them."""

    torchscript: Any  # torch.jit.ScriptModule, loaded back from the saved file's bytes
    torchscript_size: int  # bytes of that file (the bytes themselves are not kept: ResNet-18's are 47 MB)
    session: Any | None  # onnxruntime.InferenceSession, None if the ONNX export failed
    onnx_bytes: bytes
    input_shape: tuple[int, ...]  # the traced example's shape (batch free in both files)
    seconds: dict[str, float]  # {"torchscript": s, "onnx": s}: time to export (and load)
    torch_warnings: tuple[str, ...] = ()  # what torch said while tracing/saving (deprecations)
    errors: dict[str, str] = field(default_factory=dict)  # {"onnx": message} when an export failed
    ort_device: str = "cpu"

    @property
    def torchscript_mb(self) -> float:
        return self.torchscript_size / 1e6

    def torchscript_file(self) -> bytes:
        """The TorchScript file, saved again from the loaded module (for a download)."""
        import torch

        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.save is deprecated": shown on the page
            torch.jit.save(self.torchscript, buffer)
        return buffer.getvalue()

    @property
    def onnx_mb(self) -> float:
        return len(self.onnx_bytes) / 1e6


def trace_torchscript(model, example) -> tuple[Any, bytes, tuple[str, ...]]:
    """``torch.jit.trace`` -> saved bytes -> loaded module; returns (module, bytes, warnings).

    Holds the model's lock while tracing (a trace runs the shared model)."""
    import torch

    from core.hooks import lock_for

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with lock_for(model), torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        data = buffer.getvalue()
        loaded = torch.jit.load(io.BytesIO(data), map_location=example.device).eval()
    said = tuple(dict.fromkeys(f"{type(w.message).__name__}: {w.message}" for w in caught))
    return loaded, data, said


def export_artifacts(model, x, *, device: str = "cpu", threads: int | None = None,
                     progress: Progress | None = None, deadline=None) -> Artifacts:
    """TorchScript and ONNX files of ``model`` traced on ``x`` (N, 3, H, W), loaded back."""
    import torch

    from core import export

    report = progress or _nothing
    threads = threads or torch.get_num_threads()
    x = x.to(device)
    report(0.0, "Tracing to TorchScript…")
    t0 = time.perf_counter()
    ts, ts_bytes, said = trace_torchscript(model, x[:1])
    t_ts = time.perf_counter() - t0
    if deadline is not None:
        deadline.check()
    report(0.3, "Exporting to ONNX (torch.export, then ONNX graph)…")
    errors: dict[str, str] = {}
    session, onnx_bytes = None, b""
    t0 = time.perf_counter()
    cuda = device.startswith("cuda")
    try:
        with tempfile.TemporaryDirectory(prefix="cvlab-export-") as tmp:
            path = export.export_onnx(model, x[:1], Path(tmp) / "model.onnx")
            onnx_bytes = path.read_bytes()
        session = export.ort_session(onnx_bytes, threads=threads, cuda=cuda)
    except export.ExportError as exc:
        errors["onnx"] = clean_error(str(exc))
    t_onnx = time.perf_counter() - t0
    ort_device = "cuda" if session is not None and export.providers(session)[0].startswith("CUDA") else "cpu"
    report(1.0, "Exported")
    return Artifacts(ts, len(ts_bytes), session, onnx_bytes, tuple(x.shape), {"torchscript": t_ts, "onnx": t_onnx},
                     said, errors, ort_device)


# --- running and comparing ------------------------------------------------------------


def runners(model, arts: Artifacts, device: str) -> dict[str, Callable]:
    """{runtime: fn(x: CPU tensor) -> logits (numpy)} for eager, TorchScript and ONNX Runtime."""
    import torch

    from core import export
    from core.hooks import lock_for

    lock = lock_for(model)

    def eager(x):
        with lock, torch.inference_mode():
            return model(x.to(device)).float().cpu().numpy()

    def torchscript(x):
        with torch.inference_mode():
            return arts.torchscript(x.to(device)).float().cpu().numpy()

    out = {"eager": eager, "torchscript": torchscript}
    if arts.session is not None:
        out["onnxruntime"] = lambda x: export.ort_run(arts.session, x.cpu().numpy())
    return out


@dataclass(frozen=True)
class Agreement:
    runtime: str
    max_abs_diff: float  # max |logits - eager logits|
    same_top1: float  # fraction of images whose top-1 equals eager's
    top1: tuple[int, ...]


def agreement(outputs: dict[str, np.ndarray], reference: str = "eager") -> list[Agreement]:
    """Compare every runtime's logits with ``reference``'s (same inputs)."""
    ref = outputs[reference]
    ref_top = ref.argmax(1)
    rows = []
    for name, out in outputs.items():
        top = out.argmax(1)
        rows.append(Agreement(name, float(np.abs(out.astype(np.float64) - ref).max()),
                              float((top == ref_top).mean()), tuple(int(t) for t in top)))
    return rows


def repeats_for(seconds_per_call: float, *, budget_s: float = 1.5, lo: int = 5, hi: int = 30) -> int:
    """How many timed repeats fit in ``budget_s`` (between ``lo`` and ``hi``)."""
    if seconds_per_call <= 0:
        return hi
    return int(min(hi, max(lo, int(budget_s / seconds_per_call))))


def timed(fn: Callable[[], object], device: str, *, budget_s: float = 1.5):
    """core.perf.time_call with warm-up and as many repeats as fit in ``budget_s``."""
    from core.perf import synchronize, time_call

    t0 = time.perf_counter()
    fn()  # first warm-up call, also the estimate of one call's cost
    synchronize(device)
    one = time.perf_counter() - t0
    return time_call(fn, warmup=1, repeats=repeats_for(one, budget_s=budget_s), device=device)


def batch_of(x, n: int):
    """``n`` copies of the first image of ``x`` (the same picture, a realistic batch shape)."""
    return x[:1].expand(n, *x.shape[1:]).contiguous()


@dataclass
class Report:
    """Everything the Deployment page shows after "Export and measure"."""

    model: str
    device: str  # torch device of eager and TorchScript ("cpu", "cuda:0")
    device_name: str
    agreement: list[Agreement]
    latency: dict[str, Any]  # {runtime: core.perf.Timing} at batch 1
    throughput: list[dict]  # rows: runtime, batch, p50_ms, p95_ms, images_per_s
    artifacts: Artifacts
    seconds: float

    def rows(self, titles: dict[str, str] | None = None) -> list[dict]:
        """The main table: one row per runtime (agreement, size, latency)."""
        titles = titles or RUNTIME_TITLES
        size = {"eager": None, "torchscript": self.artifacts.torchscript_mb, "onnxruntime": self.artifacts.onnx_mb}
        out = []
        for a in self.agreement:
            t = self.latency.get(a.runtime)
            out.append({"runtime": titles.get(a.runtime, a.runtime), "max |Δ logit| vs eager": a.max_abs_diff,
                        "same top-1": a.same_top1 == 1.0,
                        "file MB": None if size.get(a.runtime) is None else round(size[a.runtime], 2),
                        "p50 ms": None if t is None else round(t.p50, 2),
                        "p95 ms": None if t is None else round(t.p95, 2),
                        "runs on": self.artifacts.ort_device if a.runtime == "onnxruntime" else self.device})
        return out

    def csv_rows(self) -> list[dict]:
        """Both tables as one CSV-ready list (every row has every column)."""
        rows = [{"table": "runtimes", **r} for r in self.rows()]
        rows += [{"table": "throughput", **r} for r in self.throughput]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        return [{k: r.get(k) for k in keys} for r in rows]


TOLERANCE = 1e-4  # max |Δ logit| for "the same computation" in float32 on one device


def verdict(report: "Report") -> tuple[str, str]:
    """("success" | "info" | "warning", sentence) on how far the exported runtimes are from eager.

    On a GPU, PyTorch runs float32 convolutions on TF32 tensor cores by default
    (``torch.backends.cudnn.allow_tf32``), ~1e-3 relative precision, while ONNX Runtime on
    the CPU computes in full float32: there a difference near 1e-3 is that, not the export."""
    others = [a for a in report.agreement if a.runtime != "eager"]
    if not others:
        return "warning", "No exported runtime ran, so nothing could be compared."
    worst = max(others, key=lambda a: a.max_abs_diff)
    same = all(a.same_top1 == 1.0 for a in others)
    if worst.max_abs_diff < TOLERANCE:
        return "success", (f"Every exported runtime matches eager PyTorch: largest logit difference "
                           f"{worst.max_abs_diff:.1e} (float32 rounding: the graphs fuse and reorder operations).")
    where = report.artifacts.ort_device if worst.runtime == "onnxruntime" else report.device
    if report.device.startswith("cuda") and where != report.device and worst.max_abs_diff < 1e-1 and same:
        return "info", (f"{RUNTIME_TITLES[worst.runtime]} on the CPU differs from eager PyTorch on the GPU by "
                        f"{worst.max_abs_diff:.1e}: PyTorch runs float32 convolutions on TF32 tensor cores by "
                        "default (torch.backends.cudnn.allow_tf32), the CPU in full float32. Same top-1: yes.")
    return "warning", (f"{RUNTIME_TITLES[worst.runtime]} differs from eager by {worst.max_abs_diff:.1e} in some logit"
                       f"{'' if same else ' and changes the top-1 answer'}: check the export.")


def measure(model, arts: Artifacts, x, *, device: str = "cpu", device_name: str = "",
            model_name: str = "", batches: tuple[int, ...] = BATCHES, progress: Progress | None = None,
            deadline=None, budget_s: float = 1.5) -> Report:
    """Outputs compared with eager on ``x``; latency at batch 1; throughput at ``batches``."""
    report = progress or _nothing
    t_start = time.perf_counter()
    run = runners(model, arts, device)
    x = x.detach().cpu()
    report(0.0, "Comparing outputs…")
    outputs = {name: fn(x) for name, fn in run.items()}
    agree = agreement(outputs)
    steps = len(run) * (1 + len(batches))
    done = 0
    latency = {}
    for name, fn in run.items():
        if deadline is not None:
            deadline.check()
        one = x[:1]
        latency[name] = timed(lambda fn=fn, one=one: fn(one), _sync_device(name, device, arts), budget_s=budget_s)
        done += 1
        report(done / steps, f"Timing {RUNTIME_TITLES.get(name, name)}, one image…")
    rows = []
    for b in batches:
        xb = batch_of(x, b)
        for name, fn in run.items():
            if deadline is not None:
                deadline.check()
            t = latency[name] if b == 1 else timed(lambda fn=fn, xb=xb: fn(xb), _sync_device(name, device, arts),
                                                   budget_s=budget_s)
            rows.append({"runtime": RUNTIME_TITLES.get(name, name), "batch": b, "p50 ms": round(t.p50, 2),
                         "p95 ms": round(t.p95, 2), "images/s": round(b / (t.p50 / 1000), 1)})
            done += 1
            report(done / steps, f"Timing {RUNTIME_TITLES.get(name, name)}, batch {b}…")
    return Report(model_name, device, device_name, agree, latency, rows, arts, time.perf_counter() - t_start)


def _sync_device(runtime: str, device: str, arts: Artifacts) -> str:
    return arts.ort_device if runtime == "onnxruntime" else device


# --- production checklist -------------------------------------------------------------


@dataclass(frozen=True)
class Concern:
    concern: str
    why: str
    here: str  # what this app itself does about it (Markdown)
    evidence: tuple[tuple[str, str], ...]  # (file, text that must appear in it): pinned by a test


CHECKLIST: tuple[Concern, ...] = (
    Concern("Input validation", "Untrusted uploads can be huge, malformed or not images at all.",
            "Every upload goes through one decoder, `core/imageio.py`: at most 50 MB and 50 megapixels "
            "(checked from the header, before decoding), an allow-list of raster formats, sides ≥ 16 px, "
            "aspect ≤ 20:1, truncated files refused; `.streamlit/config.toml` caps uploads at 50 MB too.",
            (("core/imageio.py", "MAX_BYTES = 50 * 1024 * 1024"), ("core/imageio.py", "MAX_PIXELS = 50_000_000"),
             ("core/imageio.py", "_PILLOW_FORMATS"), (".streamlit/config.toml", "maxUploadSize = 50"))),
    Concern("Pre-processing parity", "A server that resizes or normalises differently from training "
            "degrades silently (see the table above).",
            "All classifier pages build the input with one function, `Classifier.tensor` in "
            "`core/classifier.py`; this page's test checks the correct pipeline equals it exactly and "
            "that every mistake changes the tensor.",
            (("core/classifier.py", "def tensor(self, rgb"),)),
    Concern("Model versioning and integrity", "You must know exactly which weights answered a request.",
            "`models/registry.py` lists every model once with its file name and pre-processing (mean, std, "
            "input size); EfficientNet-Lite0's file, installed as a pip package, is checked against its "
            "published SHA-256 before it is loaded; downloads go to a temporary file and are renamed "
            "atomically, then checked against torchvision's hash prefix (a mismatch deletes the file). The "
            "project's own checkpoints carry a format version and are retrained when the header no longer "
            "matches (`models/checkpoints.py`).",
            (("models/registry.py", "def sha256_of"), ("models/registry.py", "hash_prefix"),
             ("models/registry.py", "def atomic_path"), ("models/registry.py", "ChecksumMismatch"),
             ("models/checkpoints.py", "self.header"))),
    Concern("Safe model files", "A pickle is a program: loading one from a user runs their code.",
            "State dicts are loaded with `torch.load(..., weights_only=True)`; Ultralytics checkpoints "
            "(pickles) are only read from the registry's own file names, never uploaded. Users cannot "
            "upload models at all. This page exports TorchScript and ONNX: ONNX is a protobuf graph, "
            "not executable Python.",
            (("models/registry.py", "weights_only=True"), ("models/checkpoints.py", "weights_only=True"))),
    Concern("Latency budget", "Users and SLAs care about p95, not the mean of a warm loop.",
            "Timings are `core.perf.time_call` (warm-up, repeats, p50/p95, CUDA synchronised); the "
            "project's benchmark (`benchmark/report.py`) enforces a cold start ≤ 3 s and warm reruns ≤ 1 s "
            "(≤ 0.3 s without a pretrained model).",
            (("core/perf.py", "def time_call"), ("benchmark/report.py", "RERUN_PRETRAINED_S = 1.0"))),
    Concern("Batching", "Per-call overhead dominates small models; batching buys throughput at a latency cost.",
            "The throughput table above measures it; the Adversarial page classifies its six defended "
            "images in one batched forward pass (`components/adversarial.py`).",
            (("components/adversarial.py", "one batched forward pass"),)),
    Concern("Resource limits", "One user must not be able to exhaust CPU or memory for everyone.",
            "Heavy jobs go through `core/jobs.py`'s JobGate: one latency run on the whole server "
            "(`TIMING`), one job per session, a time limit; model caches are bounded (`max_entries`).",
            (("core/jobs.py", "TIMING = JobGate("), ("components/models.py", "max_entries=MAX_MODELS"))),
    Concern("Concurrency", "A shared model serves many requests at once.",
            "Cached models are shared by all sessions; hooks and exports hold the model's lock "
            "(`core/hooks.py` `lock_for`), forward passes run under `torch.inference_mode`.",
            (("core/hooks.py", "def lock_for"),)),
    Concern("Fallbacks", "A missing dependency should degrade the service, not take it down.",
            "The photo pages' classifier, EfficientNet-Lite0, is installed with the lab, never downloaded; "
            "other weights that are missing give a card that says how to fetch them, and a page whose "
            "classifier cannot load at all runs on the project's own shapes models (`components/classifier.py`); "
            "a failed download is remembered for 5 minutes instead of retried on every request "
            "(`components/models.py`).",
            (("components/classifier.py", "Offline demonstration"), ("components/models.py", "RETRY_AFTER_S = 300.0"))),
    Concern("Monitoring and health", "You cannot fix what you do not see: latency, errors, input drift.",
            "Only the basics: the Docker image has a `HEALTHCHECK` on Streamlit's health endpoint and runs as "
            "a non-root user; users see no tracebacks (`showErrorDetails = \"none\"`). There is no metrics "
            "export or drift monitoring: a production service would log latency percentiles, error rates and "
            "input/prediction statistics per model version.",
            (("Dockerfile", "HEALTHCHECK"), ("Dockerfile", "USER lab"), (".streamlit/config.toml", "showErrorDetails"))),
)
