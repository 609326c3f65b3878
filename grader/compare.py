"""Comparisons that explain themselves.

Every failure says which output, what differs (type, shape, dtype, values),
by how much and where, and, when the submission's output matches one of the
catalogued wrong variants a test supplies, the likely cause.
"""

from __future__ import annotations

from typing import Callable, Mapping

import torch

# What a correct computation reaches in each dtype (PyTorch's own included).
TOLERANCES = {
    torch.float64: dict(rtol=1e-7, atol=1e-9),
    torch.float32: dict(rtol=1e-4, atol=1e-5),
    torch.float16: dict(rtol=1e-2, atol=1e-3),
    torch.bfloat16: dict(rtol=2e-2, atol=1e-2),
}

Variants = Mapping[str, "torch.Tensor | Callable[[], torch.Tensor]"]


def fmt_index(index: tuple[int, ...], dims: str | None) -> str:
    if not index:
        return "the scalar"
    if dims and len(dims) == len(index):
        return "[" + ", ".join(f"{d}={i}" for d, i in zip(dims, index)) + "]"
    return "[" + ", ".join(map(str, index)) + "]"


def _close(got: torch.Tensor, want: torch.Tensor, rtol: float, atol: float) -> torch.Tensor:
    return torch.isclose(got.to(want.dtype), want, rtol=rtol, atol=atol, equal_nan=True)


def assert_close(got, expected: torch.Tensor, name: str = "output", *, dims: str | None = None,
                 rtol: float | None = None, atol: float | None = None,
                 variants: Variants | None = None, check_dtype: bool = True,
                 dtype_hint: str | None = None) -> None:
    """Assert that ``got`` equals ``expected`` within the dtype's tolerance.

    ``dtype_hint`` replaces the default advice on a dtype mismatch (for
    outputs whose dtype is not the inputs', such as int64 lengths).
    ``variants`` maps a likely cause ("scaled by 1/E instead of 1/sqrt(E)") to
    the output that mistake produces; the first one the submission matches is
    named in the message. ``dims`` names the axes for the location ("BLS").
    """
    expected = expected.detach()
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name}: expected a tensor of shape {tuple(expected.shape)}, "
                             f"got {type(got).__name__}")
    got = got.detach()
    if got.shape != expected.shape:
        cause = _match_variant(got, expected, variants, shape_only=True)
        raise AssertionError(f"{name}: expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
                             + (f"; likely cause: {cause}" if cause else ""))
    if check_dtype and got.dtype != expected.dtype:
        if dtype_hint:
            raise AssertionError(f"{name}: expected dtype {_dt(expected)}, got {_dt(got)}; {dtype_hint}")
        raise AssertionError(f"{name}: expected dtype {_dt(expected)} (the inputs' dtype), got {_dt(got)}: "
                             "create tensors with dtype=x.dtype (or *_like) instead of a fixed dtype")
    tol = TOLERANCES.get(expected.dtype, dict(rtol=0.0, atol=0.0))
    rtol = tol["rtol"] if rtol is None else rtol
    atol = tol["atol"] if atol is None else atol
    if expected.numel() == 0:
        return
    ok = _close(got, expected, rtol, atol) if expected.is_floating_point() else got == expected
    if bool(ok.all()):
        return
    raise AssertionError(describe_mismatch(got, expected, ok, name, dims) + _cause(got, expected, variants, rtol, atol))


def describe_mismatch(got: torch.Tensor, expected: torch.Tensor, ok: torch.Tensor,
                      name: str, dims: str | None) -> str:
    bad = (~ok).nonzero()
    n_bad, n = int(bad.shape[0]), ok.numel()
    if expected.is_floating_point():
        g64, e64 = got.to(torch.float64), expected.to(torch.float64)
        nan_where_finite = g64.isnan() & e64.isfinite()
        if bool(nan_where_finite.any()):
            where = tuple(int(i) for i in nan_where_finite.nonzero()[0])
            return (f"{name}: nan at {fmt_index(where, dims)} where {_num(e64[where])} was expected "
                    f"({int(nan_where_finite.sum())} of {n} values are nan): an overflow or a 0/0 somewhere")
        err = (g64 - e64).abs()
        err = torch.where(ok, torch.zeros_like(err), torch.where(err.isnan(), float("inf"), err))
        flat = int(err.argmax())
        where = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), expected.shape))
        scale = float(e64.abs().flatten()[flat])
        rel = f" (rel {float(err.flatten()[flat]) / scale:.2g})" if scale > 0 else ""
        return (f"{name}: {n_bad} of {n} values differ; max abs error {_num(err.flatten()[flat])}"
                f"{rel} at {fmt_index(where, dims)}: expected {_num(e64[where])}, "
                f"got {_num(g64[where])}")
    where = tuple(int(i) for i in bad[0])
    return (f"{name}: {n_bad} of {n} values differ; first at {fmt_index(where, dims)}: "
            f"expected {expected[where].item()}, got {got[where].item()}")


PRECISION = ("off by float32 rounding only: some intermediate is float32 (a .float(), or a tensor made "
             "without dtype=x.dtype); keep the inputs' dtype throughout")


def _cause(got, expected, variants, rtol, atol) -> str:
    cause = _match_variant(got, expected, variants, rtol=rtol, atol=atol)
    if cause is None and expected.dtype == torch.float64 and bool(
            _close(got, expected, **TOLERANCES[torch.float32]).all()):
        cause = PRECISION
    return f"; likely cause: {cause}" if cause else ""


def _match_variant(got, expected, variants, *, shape_only=False, rtol=1e-4, atol=1e-5) -> str | None:
    for cause, variant in (variants or {}).items():
        try:
            v = variant() if callable(variant) else variant
        except Exception:  # noqa: BLE001 - a variant that cannot be built cannot explain anything
            continue
        if not isinstance(v, torch.Tensor) or v.shape != got.shape:
            continue
        if shape_only:
            return cause
        v = v.detach().to(expected.dtype)
        if v.is_floating_point():
            # Tolerances scaled to the values, so small outputs are not "matched" by everything,
            # and a variant equal to the expected value explains nothing.
            scale = float(expected.abs().max()) if expected.numel() else 1.0
            a = max(atol, 1e-5) * min(1.0, max(scale, 1e-12))
            if expected.shape == v.shape and bool(_close(v, expected, rtol, atol).all()):
                continue
            close = _close(got, v, max(rtol, 1e-4), a)
        else:
            close = got == v
        if bool(close.all()):
            return cause
    return None


def assert_equal(got, expected, name: str = "output") -> None:
    """Exact equality for plain Python values (ints, lists of ints)."""
    if got != expected:
        raise AssertionError(f"{name}: expected {expected!r}, got {got!r}")


def _dt(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _num(x) -> str:
    return f"{float(x):.6g}"
