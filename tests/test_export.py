"""core.export: the exported ONNX file computes what the PyTorch model computes."""

import numpy as np
import pytest
import torch

from core import export


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 3)).eval()


def test_onnx_matches_pytorch_for_any_batch(tmp_path):
    net = _net()
    # a batch-1 example still gives a file that takes any batch
    path = export.export_onnx(net, torch.randn(1, 3, 16, 16), tmp_path / "n.onnx")
    session = export.ort_session(path, threads=1)
    for batch in (1, 5):
        x = torch.randn(batch, 3, 16, 16)
        with torch.no_grad():
            want = net(x).numpy()
        got = export.ort_run(session, x.numpy())
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 1e-5
    assert export.file_mb(path) > 0
    assert export.providers(session)[-1] == "CPUExecutionProvider"


def test_a_broken_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(export.ExportError, match="could not load"):
        export.ort_session(bad)
