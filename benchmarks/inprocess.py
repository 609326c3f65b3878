"""A submission run inside the grader's own process: the baseline that shows what the sandbox costs.

``InProcess`` has the interface of ``grader.sandbox.Submission`` (``impl.fn(*args)``,
``impl.call(fn, *args, grad_outputs=..., mutates=...) -> Result``) and mimics
what a call through the child process does to the values (grader/child.py's
``serve`` with ``encode`` / ``decode`` on both ends) without a process, a pipe
or serialisation:

- arguments are copied on the way in as the child decodes them: each tensor a
  contiguous clone, a leaf again with its ``requires_grad`` and ``.grad``;
  ``OneShot`` -> one-shot iterator, ``Seeded`` -> ``torch.Generator``,
  ``ScriptedDecoder`` -> a fresh decoder, ``Ref`` -> the object it stands for;
- the gradient of ``grad_outputs`` is backpropagated by the child's own
  ``_backward``;
- the return value and the arguments after the call come back as the parent
  decodes them: tensors detached, requiring grad again where they did (with
  their ``.grad`` when they are leaves), generators as ``Seeded`` with their
  state, one-shot iterators as ``OneShot``, anything else (a dict with
  non-string keys, an opaque object) as a ``Ref`` handle;
- errors become the same ``SubmissionError`` messages, and the same device and
  untouched-input checks run (``grader.sandbox``'s own functions).

No isolation: no time limits, no memory limits, no guard against off-limits
calls (the benchmark grades the references, which use none). The submission's
calls draw from their own random state (``torch.random.fork_rng``), as the
child's separate process does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from grader import child as wire
from grader.sandbox import ForbiddenCall, Limits, Result, SubmissionError, _check_untouched


def _to_child(x, refs: dict):
    """An argument as the child's ``decode`` gives it to the submission."""
    if isinstance(x, torch.Tensor):
        t = x.detach().clone(memory_format=torch.contiguous_format)
        if x.requires_grad:
            t.requires_grad_(True)
            if x.is_leaf and x.grad is not None:
                t.grad = x.grad.detach().clone()
        return t
    if isinstance(x, tuple):
        return tuple(_to_child(v, refs) for v in x)
    if isinstance(x, list):
        return [_to_child(v, refs) for v in x]
    if isinstance(x, dict):
        return {str(k): _to_child(v, refs) for k, v in x.items()}
    if isinstance(x, wire.OneShot):
        return wire.OnceIter([_to_child(v, refs) for v in x.items])
    if isinstance(x, wire.Seeded):
        return torch.Generator().manual_seed(x.seed)
    if isinstance(x, wire.ScriptedDecoder):
        return wire.ScriptedDecoder(*(_to_child(t, refs) for t in (x.emb, x.w_h, x.w_out)),
                                    fed=[_to_child(t, refs) for t in x.fed])
    if isinstance(x, wire.Ref):
        if x.key not in refs:
            raise SubmissionError("a handle from an earlier process was passed back; the process was restarted")
        return refs[x.key]
    return x  # None, bool, int, float, str, torch.dtype


def _to_parent(x, refs: dict):
    """A value as the parent's ``decode`` gets it back from the child."""
    if x is None or isinstance(x, (bool, int, float, str, torch.dtype)):
        return x
    if isinstance(x, torch.Tensor):
        t = x.detach().as_subclass(torch.Tensor).clone(memory_format=torch.contiguous_format)
        if x.requires_grad and t.is_floating_point():
            t.requires_grad_(True)
            if x.is_leaf and x.grad is not None:
                t.grad = x.grad.detach().clone()
        return t
    if isinstance(x, torch.Size):
        return tuple(int(d) for d in x)
    if isinstance(x, tuple):
        return tuple(_to_parent(v, refs) for v in x)
    if isinstance(x, list):
        return [_to_parent(v, refs) for v in x]
    if isinstance(x, dict) and all(isinstance(k, str) for k in x):
        return {k: _to_parent(v, refs) for k, v in x.items()}
    if isinstance(x, (wire.OneShot, wire.OnceIter)):
        return wire.OneShot([_to_parent(v, refs) for v in x.items])
    if isinstance(x, torch.Generator):
        return wire.Seeded(x.initial_seed(), state=x.get_state())
    if isinstance(x, wire.ScriptedDecoder):
        return wire.ScriptedDecoder(*(_to_parent(t, refs) for t in (x.emb, x.w_h, x.w_out)),
                                    fed=[_to_parent(t, refs) for t in x.fed])
    if isinstance(x, wire.Ref):
        return x
    # Not plain data: it stays on the submission's side, as a handle.
    key = len(refs) + 1
    refs[key] = x
    return wire.Ref(key)


class InProcess:
    """``grader.sandbox.Submission``'s interface, with the submission imported into this process."""

    def __init__(self, path: Path, module_name: str, *, forbidden: list[str] = (),
                 tainted: dict[str, list[str]] | None = None, device: str = "cpu",
                 limits: Limits | None = None, **guard_options):
        # guard_options (e.g. off-limits kernels) configure the child's guard, which has no counterpart here.
        self.path = Path(path)
        self.module_name = module_name
        self.tainted = tainted or {}
        self.device = device
        self.limits = limits or Limits()
        self._refs: dict = {}
        spec = importlib.util.spec_from_file_location(module_name, self.path)
        self.module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = self.module
        spec.loader.exec_module(self.module)

    def __getattr__(self, fn: str):
        if fn.startswith("_"):
            raise AttributeError(fn)
        return lambda *args, **kwargs: self.call(fn, *args, **kwargs).value

    def call(self, fn: str, *args, grad_outputs=None, mutates: bool = False, **kwargs) -> Result:
        if fn in self.tainted:
            raise ForbiddenCall(f"`{fn}` uses {', '.join(sorted(set(self.tainted[fn])))}, "
                                "which this exercise puts off limits")
        func = getattr(self.module, fn, None)
        if not callable(func):
            raise SubmissionError(f"your file defines no function {fn!r}")
        sent_args = [_to_child(a, self._refs) for a in args]
        sent_kwargs = {k: _to_child(v, self._refs) for k, v in kwargs.items()}
        with torch.random.fork_rng(devices=[]):
            try:
                value = func(*sent_args, **sent_kwargs)
                if grad_outputs is not None:
                    wire._backward(value, _to_child(grad_outputs, self._refs), torch.autograd.backward)
            except wire._GraderSide as exc:
                raise SubmissionError(f"`{fn}` {exc}") from None
            except Exception as exc:  # noqa: BLE001 - reported as the child reports it
                _, text = wire._format_exception(exc, str(self.path))
                if "NotImplementedError" in text:
                    raise SubmissionError(f"`{fn}` is not implemented yet (it raises NotImplementedError)") from None
                raise SubmissionError(f"`{fn}` raised {text}") from None
        result = Result(_to_parent(value, self._refs), _to_parent(sent_args, self._refs),
                        _to_parent(sent_kwargs, self._refs))
        if any(isinstance(t, torch.Tensor) for t in _flat((list(args), kwargs))):
            self._check_devices(fn, result.value)
        if not mutates:
            _check_untouched(fn, list(args), result.args, kwargs, result.kwargs)
        return result

    def _check_devices(self, fn: str, value) -> None:
        want = torch.device(self.device).type
        for t in _flat(value):
            if isinstance(t, torch.Tensor) and t.device.type != want:
                raise AssertionError(f"`{fn}` returned a tensor on {t.device.type} for inputs on {want}")

    def _ensure_child(self) -> None:
        """Nothing to start: the submission already lives here."""

    def close(self) -> None:
        sys.modules.pop(self.module_name, None)


def _flat(x):
    """Every leaf of a nested structure (the sandbox's ``_tensors``, also through one-shot iterators)."""
    if isinstance(x, (list, tuple)):
        for v in x:
            yield from _flat(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _flat(v)
    elif isinstance(x, wire.OneShot):
        yield from _flat(x.items)
    else:
        yield x
