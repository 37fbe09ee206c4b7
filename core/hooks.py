"""Hooks and state changes on models that every session shares.

A cached model is shared by all sessions (threads of one server). Running it in eval mode
under ``torch.inference_mode`` is safe to share; attaching hooks or changing it is not: a
hook registered by one session would also fire in another session's forward pass, and its
activations could be mixed up. So anything that does so holds the model's lock::

    with capture(model, {"last conv": model.features[-1]}) as seen:
        logits = model(x)
    seen.activations["last conv"]      # this call's activations, nobody else's

    with exclusive(model):              # e.g. fake quantisation, swapping a layer
        ...

Hooks are removed in ``__exit__`` (also on error), so a ``with`` block cannot leak them.
Every plain forward pass of a shared model that a page may hook holds ``lock_for(model)``
as well (the detectors' ``predict`` does): a hook fires in whichever thread runs the model.
The locks are re-entrant and per model object.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Any

_locks: "weakref.WeakKeyDictionary[Any, threading.RLock]" = weakref.WeakKeyDictionary()
_guard = threading.Lock()


def lock_for(model) -> threading.RLock:
    """The one lock of ``model`` (created on first use, dropped with the model)."""
    with _guard:
        lock = _locks.get(model)
        if lock is None:
            lock = _locks[model] = threading.RLock()
        return lock


@contextmanager
def exclusive(model):
    """Hold ``model``'s lock: no other session runs or hooks it until the block ends."""
    with lock_for(model):
        yield model


class capture:
    """Record the outputs (and, with ``grads=True``, the output gradients) of some layers.

    ``activations[name]`` and ``gradients[name]`` hold this block's tensors; the model's
    lock is held from ``__enter__`` to ``__exit__``."""

    def __init__(self, model, layers: dict[str, Any], *, grads: bool = False, detach: bool = True):
        self.model, self.layers, self.grads, self.detach = model, dict(layers), grads, detach
        self.activations: dict[str, Any] = {}
        self.gradients: dict[str, Any] = {}
        self._handles: list = []
        self._lock = lock_for(model)

    def _hook(self, name: str):
        def forward_hook(_module, _inputs, output):
            self.activations[name] = output.detach() if self.detach else output
            if self.grads and getattr(output, "requires_grad", False):
                def keep(grad):
                    self.gradients[name] = grad.detach()
                output.register_hook(keep)

        return forward_hook

    def __enter__(self) -> "capture":
        self._lock.acquire()
        try:
            for name, layer in self.layers.items():
                self._handles.append(layer.register_forward_hook(self._hook(name)))
        except BaseException:
            self._release()
            raise
        return self

    def _release(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._lock.release()

    def __exit__(self, *exc) -> None:
        self._release()
