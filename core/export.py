"""Exporting a PyTorch model to ONNX and running it with ONNX Runtime.

Shared by the Deployment, Frameworks and Quantization pages::

    path = export_onnx(model, example, out_dir / "model.onnx")   # torch.onnx (torch.export based)
    session = ort_session(path, threads=2)                      # ONNX Runtime, CPU
    logits = ort_run(session, example.numpy())                  # numpy in, numpy out

* The exporter is torch.onnx's current one (``dynamo=True``: it captures the graph with
  ``torch.export``), not the deprecated TorchScript-based one. The batch dimension is left
  dynamic, so one file serves a single image and a batch.
* Exporting traces the model; the model is shared by every session, so the export holds its
  lock (:func:`core.hooks.lock_for`) and never changes its weights or mode.
* ONNX Runtime runs on the CPU here (``CPUExecutionProvider``); :func:`ort_session` uses
  the CUDA provider only where the installed onnxruntime has it and it is asked for.

onnx, onnxruntime and torch are imported inside the functions: importing this module is free.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

INPUT, OUTPUT = "input", "logits"


class ExportError(RuntimeError):
    """The model could not be exported or loaded; the message says why, for the page."""


def export_onnx(model, example, path: str | os.PathLike, *, dynamic_batch: bool = True,
                opset: int | None = None) -> Path:
    """Write ``model`` (in eval mode) to ``path`` as ONNX, traced on ``example`` (a tensor).

    Returns the path. Raises :class:`ExportError` with the exporter's message on failure.
    """
    import torch

    from core.hooks import lock_for

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=1024)}}
        if example.shape[0] == 1:  # torch.export specialises a size-1 dimension: trace on 2
            example = example.expand(2, *example.shape[1:]).contiguous()
    kwargs: dict[str, Any] = {"dynamo": True, "verbose": False, "input_names": [INPUT],
                              "output_names": [OUTPUT], "external_data": False}
    if opset is not None:
        kwargs["opset_version"] = opset
    with lock_for(model), quiet():
        try:
            if dynamic_shapes is not None:
                kwargs["dynamic_shapes"] = _named_like_forward(model, dynamic_shapes)
            torch.onnx.export(model, (example,), str(path), **kwargs)
        except Exception as exc:  # the exporter raises many kinds; the page shows the message
            raise ExportError(clean_error(f"ONNX export failed: {type(exc).__name__}: {exc}")) from exc
    return path


def clean_error(text: str, limit: int = 700) -> str:
    """An exporter's message for the page: no terminal colour codes, the first line and the
    "Exception summary" (torch.onnx's messages are pages long), at most ``limit`` characters."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
    first = text.splitlines()[0] if text else ""
    if "## Exception summary" in text:
        summary = text.split("## Exception summary", 1)[1].split("(Refer to the full stack trace", 1)[0]
        text = first + " " + " ".join(summary.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _named_like_forward(model, shapes: dict) -> dict:
    """``dynamic_shapes`` keyed by the name of forward's first argument (``x``, ``input``...)."""
    import inspect

    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not params:
        return shapes
    return {params[0].name: next(iter(shapes.values()))}


@contextlib.contextmanager
def quiet(logger_name: str | None = "torch.onnx"):
    """Silence a tool's progress prints, warnings and log lines below ERROR (the exporter's,
    by default; ``None``: the root logger, which ONNX Runtime's quantizer logs to): the pages
    report what matters themselves."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def ort_session(model: str | os.PathLike | bytes, *, threads: int | None = None,
                cuda: bool = False):
    """An ONNX Runtime inference session for a file (or its bytes), on ``threads`` CPU threads
    (default ``core.devices.cpu_threads()``: ONNX Runtime's own default counts the host's
    cores, blind to a container's CPU quota)."""
    import onnxruntime as ort

    from core.devices import cpu_threads

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads if threads is not None else cpu_threads()))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:
        raise ExportError(f"ONNX Runtime could not load the model: {exc}") from exc


def ort_run(session, array) -> Any:
    """Run ``session`` on one input array (float32, NCHW); returns its first output (numpy)."""
    import numpy as np

    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(array, dtype=np.float32)})[0]


def providers(session) -> list[str]:
    """The execution providers a session really uses, best first."""
    return list(session.get_providers())


def file_mb(path: str | os.PathLike) -> float:
    """Size of a file on disk in megabytes (10**6 bytes)."""
    return os.path.getsize(path) / 1e6
