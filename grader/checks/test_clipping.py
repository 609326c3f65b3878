"""Grader for `clipping`: clip_grad_norm and clip_grad_value.

Expected values come from torch.nn.utils.clip_grad_norm_ / clip_grad_value_
applied to copies of the same parameters here, in the grader's process. The
wrong variants below are the mistakes learners make, used only to name the
likely cause of a mismatch.

The submission clips in place, so every call uses ``mutates=True`` and the
tests compare the parameters as they came back: each gradient against
PyTorch's, each parameter's values against the values sent.
"""

import math

import pytest
import torch
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

from grader.child import OneShot
from grader.compare import TOLERANCES, assert_close
from grader.sandbox import ForbiddenCall, SubmissionError, SubmissionTimeout

f64, f32 = torch.float64, torch.float32
INF = math.inf

# Shapes of the parameters a typical test clips; index 3 has no gradient.
SHAPES = [(4, 3), (), (5,), (2, 3, 2), (1,), (3, 1)]
NO_GRAD = (3,)


def dtname(dtype):
    return str(dtype).removeprefix("torch.")


# -- building parameters -------------------------------------------------------------

def make_params(shapes=SHAPES, dtype=f64, scale=1.0, no_grad=NO_GRAD):
    """Leaf parameters whose .grad is randn * scale (scale may differ per parameter); None at `no_grad`."""
    scales = scale if isinstance(scale, (list, tuple)) else [scale] * len(shapes)
    params = []
    for i, (shape, s) in enumerate(zip(shapes, scales)):
        p = torch.randn(shape, dtype=dtype).requires_grad_(True)
        if i not in no_grad:
            p.grad = torch.randn(shape, dtype=dtype) * s
        params.append(p)
    return params


def copies(params):
    out = []
    for p in params:
        q = p.detach().clone().requires_grad_(True)
        q.grad = None if p.grad is None else p.grad.clone()
        out.append(q)
    return out


def torch_clip_norm(params, *args, **kwargs):
    """(total norm, clipped copies of params) as torch.nn.utils.clip_grad_norm_ gives them."""
    want = copies(params)
    return clip_grad_norm_(want, *args, **kwargs), want


def torch_clip_value(params, clip_value):
    want = copies(params)
    clip_grad_value_(want, clip_value)
    return want


# -- wrong variants ------------------------------------------------------------------
# Each builds, from the original gradients, what one mistake returns: a total
# norm, or the list of clipped gradients (None where a parameter has none).
# The keys are the likely causes a learner reads.

PER_TENSOR = "the per-tensor norms were returned: return ONE total norm over all gradients, a 0-d tensor"
SUMMED = ("the per-tensor norms were added up: the total is the p-norm OF the per-tensor norms, "
          "(sum_i ||g_i||_p^p)^(1/p) (for inf their max), not their sum")
IGNORED_P = "norm_type was ignored: the 2-norm was used whatever norm_type says"
TWO_NORM_OF_NORMS = "the per-tensor p-norms were combined with a 2-norm: combine them with the same norm_type"
NO_ROOT = "the final root was left out: the total is (sum_i ||g_i||_p^p)^(1/p), not sum_i ||g_i||_p^p"
INF_AS_SUM = ("norm_type=inf went through the p-sum formula, (sum |g|^inf)^(1/inf) = 1 or nan: "
              "the inf-norm is the largest |g| over all gradients")
AFTER = "the norm AFTER clipping was returned: return the total norm computed before scaling"
OWN_NORM = ("each gradient was scaled by its own norm: clipping by norm uses ONE total norm over all "
            "gradients together, so every gradient gets the same factor")
TO_ONE = "the gradients were scaled to norm 1, not max_norm: multiply by max_norm / (norm + 1e-6)"
UP = ("the gradients were scaled UP although the norm is below max_norm: "
      "the factor is min(1, max_norm / (norm + 1e-6))")
GATED = ("the gradients were only scaled when the norm is above max_norm: PyTorch always multiplies by "
         "min(1, max_norm / (norm + 1e-6)), which is below 1 also when norm == max_norm")
UNCHANGED = ("the gradients were not changed: scale each p.grad in place (g.mul_(coef)); "
             "`g = g * coef` only rebinds a local name")
NO_EPS = "the 1e-6 was left out: the factor is max_norm / (total_norm + 1e-6), capped at 1"
NAN_SKIPPED = ("the gradients were left alone although the total norm is nan: PyTorch always multiplies by "
               "clamp(max_norm / (norm + 1e-6), max=1), which is nan here, so every gradient becomes nan; "
               "`if coef < 1` and Python's min(1, nan) skip that")
OVERFLOW = ("the norm overflowed to inf, so every gradient became 0: it was accumulated in float32 "
            "(torch.tensor(0.) and torch.zeros(()) are float32); keep the gradients' dtype")
ROWS = ("a single tensor was iterated over its rows (which have no .grad): wrap it in a list first, "
        "if isinstance(parameters, torch.Tensor): parameters = [parameters]")
TWICE = ("`parameters` was iterated twice: a generator such as model.parameters() is empty the second "
         "time; collect the gradients into a list in ONE pass and use that list")


def grads(params):
    return [p.grad for p in params]


def existing(gs):
    return [g for g in gs if g is not None]


def per_tensor(gs, p):
    return torch.stack([torch.linalg.vector_norm(g, p) for g in existing(gs)])  # (N,)


def total(gs, p):
    return torch.linalg.vector_norm(per_tensor(gs, p), p)  # ()


def scale_all(gs, factor):
    return [None if g is None else g * factor for g in gs]


def factor(norm, max_norm, eps=1e-6, cap=True):
    c = max_norm / (norm + eps)
    return c.clamp(max=1.0) if cap else c


def p_sum_with_inf(gs):
    """(sum |g|^inf)^(1/inf): what the p-sum formula gives for norm_type=inf (1 or nan)."""
    return torch.stack([g.abs().pow(INF).sum() for g in existing(gs)]).sum().pow(0.0)


def norm_variants(gs, max_norm, p):
    """Wrong total norms."""
    n = per_tensor(gs, p)
    out = {
        PER_TENSOR: lambda: n,
        SUMMED: lambda: n.sum(),
        IGNORED_P: lambda: total(gs, 2.0),
        TWO_NORM_OF_NORMS: lambda: torch.linalg.vector_norm(n, 2.0),
        AFTER: lambda: total(scale_all(gs, factor(total(gs, p), max_norm)), p),
    }
    if p == INF:
        out[INF_AS_SUM] = lambda: p_sum_with_inf(gs)
    else:
        out[NO_ROOT] = lambda: n.pow(p).sum()
    return out


def grad_variants(gs, max_norm, p):
    """Wrong clipped gradients (first match wins: most specific first).

    Leaving out the 1e-6 is not here: at these norms it is within the 1e-4 a
    variant match allows, so it would be named for any near miss; a test of
    its own shows it.
    """
    t = total(gs, p)
    n = per_tensor(gs, p)
    out = {
        OWN_NORM: lambda: [None if g is None else g * factor(torch.linalg.vector_norm(g, p), max_norm) for g in gs],
        SUMMED: lambda: scale_all(gs, factor(n.sum(), max_norm)),
        IGNORED_P: lambda: scale_all(gs, factor(total(gs, 2.0), max_norm)),
        TWO_NORM_OF_NORMS: lambda: scale_all(gs, factor(torch.linalg.vector_norm(n, 2.0), max_norm)),
        TO_ONE: lambda: scale_all(gs, factor(t, 1.0)),
        UP: lambda: scale_all(gs, factor(t, max_norm, cap=False)),
        GATED: lambda: scale_all(gs, factor(t, max_norm)) if bool(t > max_norm) else gs,
        UNCHANGED: lambda: gs,
    }
    if p == INF:
        out = {INF_AS_SUM: lambda: scale_all(gs, factor(p_sum_with_inf(gs), max_norm)), **out}
    return out


def built(variants):
    """Evaluate each variant once; one that cannot be built explains nothing and is dropped."""
    out = {}
    for cause, v in (variants or {}).items():
        try:
            out[cause] = v() if callable(v) else v
        except Exception:  # noqa: BLE001
            continue
    return out


def distinct(variants, expected):
    """Drop the variants a correct answer also matches (e.g. the sum of 1-norms IS the 1-norm)."""
    tol = TOLERANCES[expected.dtype]
    out = {}
    for cause, v in built(variants).items():
        same = (isinstance(v, torch.Tensor) and v.shape == expected.shape
                and bool(torch.isclose(v.to(expected.dtype), expected, equal_nan=True, **tol).all()))
        if not same:
            out[cause] = v
    return out


def pick(variants, i):
    """Parameter i's gradient from each list-valued variant."""
    return {cause: v[i] for cause, v in variants.items() if isinstance(v, list) and v[i] is not None}


# -- checks --------------------------------------------------------------------------

def label(i, p):
    return f"parameter {i} of shape {tuple(p.shape)}"


def assert_norm(got, want, what, variants=None):
    if isinstance(got, float):
        raise AssertionError(f"{what}: got a Python float, expected a 0-d tensor like clip_grad_norm_ returns: "
                             "do not call .item() on the total norm")
    assert_close(got, want, what, variants=distinct(variants or {}, want))


def assert_params(got, want, sent, what, variants=None):
    """Each .grad equals PyTorch's, a missing .grad stays missing, no parameter's values change."""
    if len(got) != len(want):
        raise AssertionError(f"{what}: {len(want)} parameters were sent, {len(got)} came back")
    variants = built(variants)
    for i, (g, w, s) in enumerate(zip(got, want, sent)):
        name = f"{what}, {label(i, w)}"
        if g.shape != s.shape or not torch.equal(g.detach(), s.detach()):
            raise AssertionError(f"{name}: its values (.data) changed; clipping changes only the gradient "
                                 "p.grad, never the parameter itself")
        if w.grad is None:
            if g.grad is not None:
                raise AssertionError(f"{name} had no gradient (.grad None) and must keep none; "
                                     "skip parameters whose .grad is None")
            continue
        if g.grad is None:
            raise AssertionError(f"{name}: its .grad came back None; clip the gradient in place, do not remove it")
        assert_close(g.grad, w.grad, f"{name}: clipped .grad", variants=distinct(pick(variants, i), w.grad))


def call_clip_norm(impl, params, *args, **kwargs):
    return impl.call("clip_grad_norm", params, *args, mutates=True, **kwargs)


def check_clip_norm(impl, params, max_norm, what, norm_type=2.0, variants=None, **kwargs):
    """Run the submission and PyTorch on the same parameters; compare the norm and every gradient."""
    want_norm, want = torch_clip_norm(params, max_norm, norm_type, **kwargs)
    res = call_clip_norm(impl, params, max_norm, norm_type=norm_type, **kwargs)
    gs = grads(params)
    assert_norm(res.value, want_norm, f"{what}: returned total norm", norm_variants(gs, max_norm, norm_type))
    assert_params(res.args[0], want, params, what,
                  grad_variants(gs, max_norm, norm_type) if variants is None else variants)


# -- clip_grad_norm ------------------------------------------------------------------

CASES = [(f64, 1.0), (f64, 2.0), (f64, 3.5), (f64, INF), (f32, 2.0), (f32, INF)]
CASE_IDS = [f"{dtname(d)}-p={p}" for d, p in CASES]


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("dtype,norm_type", CASES, ids=CASE_IDS)
def test_returned_norm_is_the_total_norm_over_all_gradients(impl, dtype, norm_type):
    params = make_params(dtype=dtype)
    want_norm, _ = torch_clip_norm(params, 0.5, norm_type)
    res = call_clip_norm(impl, params, 0.5, norm_type=norm_type)
    assert_norm(res.value, want_norm, f"total norm (norm_type={norm_type}, {dtname(dtype)})",
                norm_variants(grads(params), 0.5, norm_type))


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("dtype,norm_type", CASES, ids=CASE_IDS)
def test_gradients_above_max_norm_are_scaled_like_torch(impl, dtype, norm_type):
    params = make_params(dtype=dtype)
    _, want = torch_clip_norm(params, 0.5, norm_type)
    res = call_clip_norm(impl, params, 0.5, norm_type=norm_type)
    assert_params(res.args[0], want, params, f"max_norm=0.5, norm_type={norm_type}, {dtname(dtype)}",
                  grad_variants(grads(params), 0.5, norm_type))


@pytest.mark.points(1)
@pytest.mark.parametrize("dtype", [f64, f32], ids=["float64", "float32"])
def test_gradients_below_max_norm_are_left_as_they_are(impl, dtype):
    check_clip_norm(impl, make_params(dtype=dtype), 100.0, f"max_norm=100 above the norm, {dtname(dtype)}")


@pytest.mark.points(1)
def test_a_norm_equal_to_max_norm_is_still_multiplied_by_max_norm_over_norm_plus_1e_6(impl):
    params = make_params(scale=0.01)
    max_norm = float(torch_clip_norm(params, 1.0)[0])  # PyTorch's own total, to the last bit
    # Every plausible factor is within 1e-4 of 1 here: name only the mistake this test is about.
    check_clip_norm(impl, params, max_norm, f"max_norm equal to the total norm {max_norm:.6g}",
                    variants={GATED: grads(params)})


@pytest.mark.points(1)
@pytest.mark.parametrize("dtype", [f64, f32], ids=["float64", "float32"])
def test_the_1e_6_shows_for_small_gradients(impl, dtype):
    # With a total norm near 1e-3 the 1e-6 changes the factor by 0.1%, so compare
    # the factor itself (new grad / old grad): the clipped values are too small to show it.
    params = make_params([(40,), (3, 5)], dtype=dtype, scale=1e-4, no_grad=())
    want_norm, want = torch_clip_norm(params, 1e-4)
    res = call_clip_norm(impl, params, 1e-4)
    gs = grads(params)
    assert_norm(res.value, want_norm, f"total norm of small gradients ({dtname(dtype)})")
    old = torch.cat([g.flatten() for g in gs])
    new = torch.cat([p.grad.flatten() for p in res.args[0]])
    t = total(gs, 2.0)
    assert_close(new / old, torch.cat([p.grad.flatten() for p in want]) / old,
                 f"factor new grad / old grad with total norm {float(t):.3g} and max_norm=1e-4 ({dtname(dtype)})",
                 variants={NO_EPS: (1e-4 / t).expand_as(old), UNCHANGED: torch.ones_like(old)})


@pytest.mark.points(1)
def test_a_single_tensor_is_accepted_as_parameters(impl):
    (p,) = make_params([(4, 3)], dtype=f32, no_grad=())
    want_norm, (want,) = torch_clip_norm([p], 0.5)
    res = call_clip_norm(impl, p, 0.5)
    assert_norm(res.value, want_norm, "total norm of one tensor passed without a list",
                {ROWS: lambda: torch.tensor(0.0)})
    assert_params([res.args[0]], [want], [p], "one tensor passed without a list",
                  {ROWS: [p.grad], **grad_variants([p.grad], 0.5, 2.0)})


@pytest.mark.points(2)
def test_a_one_shot_iterator_like_model_parameters_is_read_once(impl):
    params = make_params(dtype=f32)
    want_norm, want = torch_clip_norm(params, 0.5)
    res = call_clip_norm(impl, OneShot(params), 0.5)
    assert_norm(res.value, want_norm, "total norm with parameters given as a generator",
                {TWICE: lambda: torch.tensor(0.0)})
    assert_params(res.args[0].items, want, params, "parameters given as a generator",
                  {TWICE: grads(params), **grad_variants(grads(params), 0.5, 2.0)})


@pytest.mark.points(1)
def test_no_gradients_at_all_give_tensor_0_like_torch(impl):
    for what, params in [("every .grad is None", make_params([(3,), (2, 2)], dtype=f32, no_grad=(0, 1))),
                         ("an empty list of parameters", [])]:
        want_norm, _ = torch_clip_norm(params, 1.0)
        try:
            res = call_clip_norm(impl, params, 1.0)
        except AssertionError as exc:
            # PyTorch's own tensor(0.) lives on the CPU whatever the parameters'
            # device, and the proxy rejects CPU outputs on CUDA: accept that there.
            if impl.device != "cpu" and "returned a tensor on cpu" in str(exc):
                continue
            raise
        except SubmissionError as exc:
            if type(exc) is not SubmissionError or "not implemented yet" in str(exc):
                raise
            raise SubmissionError(f"with no gradient to clip ({what}) clip_grad_norm must return torch.tensor(0.); "
                                  f"{exc}") from None
        assert_norm(res.value, want_norm, f"total norm when {what} (PyTorch returns torch.tensor(0.))")


# -- non-finite norms ----------------------------------------------------------------

def poisoned(kind):
    """Parameters whose total norm is nan or inf, and how that came about."""
    if kind == "overflow":
        # Every value is finite, but the float32 sum of squares passes 3.4e38.
        return make_params([(4, 3), (), (6,)], dtype=f32, scale=[1e4, 1e12, 1e20], no_grad=()), \
            "float32 gradients of 1e20, whose norm overflows to inf"
    params = make_params()
    params[0].grad[1, 2] = {"nan": math.nan, "inf": INF}[kind]
    return params, f"a gradient holding {kind} at [1, 2] of parameter 0"


@pytest.mark.points(1)
@pytest.mark.parametrize("kind", ["nan", "inf", "overflow"])
def test_error_if_nonfinite_raises_runtime_error_for_a_nonfinite_total_norm(impl, kind):
    params, what = poisoned(kind)
    with pytest.raises(RuntimeError):
        torch_clip_norm(params, 1.0, error_if_nonfinite=True)
    try:
        call_clip_norm(impl, params, 1.0, error_if_nonfinite=True)
    except (ForbiddenCall, SubmissionTimeout):
        raise
    except SubmissionError as exc:
        if "not implemented yet" in str(exc):
            raise
        if "raised RuntimeError" in str(exc):
            return
        raise AssertionError(f"with error_if_nonfinite=True and {what}, clip_grad_norm must raise RuntimeError "
                             f"as PyTorch does; instead {exc}") from None
    hint = (" Check the TOTAL norm (torch.isfinite(total)), not each gradient: here every gradient is finite."
            if kind == "overflow" else " Check with torch.isfinite(total): nan == inf and nan > x are both False."
            if kind == "nan" else "")
    raise AssertionError(f"with error_if_nonfinite=True and {what}, clip_grad_norm returned normally: "
                         f"it must raise RuntimeError when the total norm is nan or inf.{hint}")


@pytest.mark.points(1)
def test_error_if_nonfinite_with_finite_gradients_clips_normally(impl):
    check_clip_norm(impl, make_params(), 0.5, "error_if_nonfinite=True with finite gradients",
                    error_if_nonfinite=True)


@pytest.mark.points(1)
@pytest.mark.parametrize("kind", ["nan", "inf", "overflow"])
def test_without_error_if_nonfinite_a_nonfinite_norm_scales_like_torch(impl, kind):
    params, what = poisoned(kind)
    want_norm, want = torch_clip_norm(params, 0.5)
    res = call_clip_norm(impl, params, 0.5)
    gs = grads(params)
    assert_norm(res.value, want_norm, f"total norm with {what}", norm_variants(gs, 0.5, 2.0))
    first = {NAN_SKIPPED: gs} if kind == "nan" else {}
    assert_params(res.args[0], want, params, what, {**first, **grad_variants(gs, 0.5, 2.0)})


@pytest.mark.points(1)
@pytest.mark.parametrize("dtype,top", [(f64, 1e20), (f32, 1e17)], ids=["float64-1e20", "float32-1e17"])
def test_large_gradients_are_clipped_like_torch(impl, dtype, top):
    scales = [1e4, 1e8, 1e12, 1e16, top]
    params = make_params([(4, 3), (), (5,), (2, 3, 2), (3, 1)], dtype=dtype, scale=scales, no_grad=())
    gs = grads(params)
    want_norm, want = torch_clip_norm(params, 1.0)
    res = call_clip_norm(impl, params, 1.0)
    assert_norm(res.value, want_norm, f"total norm of gradients from 1e4 to {top:g} ({dtname(dtype)})",
                {OVERFLOW: lambda: torch.tensor(INF, dtype=dtype), **norm_variants(gs, 1.0, 2.0)})
    assert_params(res.args[0], want, params, f"gradients from 1e4 to {top:g} ({dtname(dtype)})",
                  {OVERFLOW: [torch.zeros_like(g) for g in gs], **grad_variants(gs, 1.0, 2.0)})


# -- clip_grad_value -----------------------------------------------------------------

def value_variants(gs, c):
    """Wrong clamped gradients."""
    return {
        "the gradients were not changed: clamp each p.grad in place (g.clamp_(-c, c)); "
        "`g = g.clamp(...)` only rebinds a local name": lambda: gs,
        "only the upper bound was applied: clamp to [-clip_value, clip_value]":
            lambda: [None if g is None else g.clamp(max=c) for g in gs],
        "only the lower bound was applied: clamp to [-clip_value, clip_value]":
            lambda: [None if g is None else g.clamp(min=-c) for g in gs],
        "values beyond the bound were set to 0: clamp them to -clip_value or clip_value":
            lambda: [None if g is None else g.masked_fill(g.abs() > c, 0.0) for g in gs],
        "the gradients were clipped by norm: clip_grad_value clamps each value on its own":
            lambda: scale_all(gs, factor(total(gs, 2.0), c)),
    }


def check_clip_value(impl, params, clip_value, what, send=None, unchanged=None):
    """Clamp with the submission and with PyTorch; ``unchanged`` names why gradients left as they were."""
    want = torch_clip_value(params, clip_value)
    res = impl.call("clip_grad_value", params if send is None else send, clip_value, mutates=True)
    got = res.args[0]
    got = got.items if isinstance(got, OneShot) else [got] if isinstance(got, torch.Tensor) else got
    variants = value_variants(grads(params), clip_value)
    assert_params(got, want, params, what, {unchanged: grads(params), **variants} if unchanged else variants)


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("dtype,clip_value", [(f64, 0.1), (f64, 0.5), (f32, 2.0)],
                         ids=["float64-0.1", "float64-0.5", "float32-2.0"])
def test_clip_grad_value_clamps_every_gradient_in_place(impl, dtype, clip_value):
    params = make_params(dtype=dtype, scale=1.5)
    check_clip_value(impl, params, clip_value, f"clip_grad_value(clip_value={clip_value}, {dtname(dtype)})")


@pytest.mark.points(1)
def test_clip_grad_value_accepts_a_single_tensor_and_a_one_shot_iterator(impl):
    (p,) = make_params([(5, 4)], no_grad=())
    check_clip_value(impl, [p], 0.3, "clip_grad_value on one tensor passed without a list", send=p, unchanged=ROWS)
    params = make_params()
    check_clip_value(impl, params, 0.3, "clip_grad_value on parameters given as a generator",
                     send=OneShot(params), unchanged=TWICE)
