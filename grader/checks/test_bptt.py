"""Grader for `bptt`: a vanilla tanh RNN, its backward pass by hand, gradient norms through time.

Expected values come from torch.nn.RNN (the forward pass) and from
torch.autograd, run here in the grader's process on the contract's plain loop
(with ``h = h.detach()`` where truncated BPTT cuts it), always in float64 and
cast to the inputs' dtype. The submission itself
may not use autograd. ``by_hand`` and ``norms_by_hand`` are BPTT with one
mistake switched on, used only to name the likely cause of a mismatch, never
as expected values.

``rnn_forward``'s cache is opaque: it comes back as plain data or as a handle
to an object kept in the submission's process, and every test passes it back
unchanged, within the same test, to the other functions.

Shapes: B batch, T time, D input, H hidden.
"""

import math

import pytest
import torch

from grader.compare import assert_close

f64, f32 = torch.float64, torch.float32
DTYPES = {"float64": f64, "float32": f32}
KEYS = ("dx", "dh0", "dw_xh", "dw_hh", "db")  # in the order of the inputs x, h0, w_xh, w_hh, b
DIMS = {"dx": "BTD", "dh0": "BH", "dw_xh": "DH", "dw_hh": None, "db": "H"}
SHAPES = {  # (B, T, D, H): B != H and B != T where a shape-only mistake must be told apart
    "B=3,T=5,D=4,H=6": (3, 5, 4, 6),
    "B=1,T=1,D=2,H=3": (1, 1, 2, 3),
    "B=2,T=4,D=5,H=1": (2, 4, 5, 1),
    "B=2,T=6,D=3,H=3": (2, 6, 3, 3),
}


def never(t):
    return False


def chunks_of(k):
    """The contract's truncation: detach h before every step t > 0 with t % k == 0."""
    return lambda t: bool(k) and t > 0 and t % k == 0


# -- the recurrence and autograd on it (expected values) -----------------------------

def make_inputs(B, T, D, H, dtype=f64):
    """x, h0, w_xh, w_hh, b scaled so tanh is neither linear nor saturated."""
    x = torch.randn(B, T, D, dtype=f64)
    h0 = torch.randn(B, H, dtype=f64) * 0.5
    w_xh = torch.randn(D, H, dtype=f64) / math.sqrt(D)
    w_hh = torch.randn(H, H, dtype=f64) / math.sqrt(H)
    b = torch.randn(H, dtype=f64) * 0.1
    return tuple(t.to(dtype) for t in (x, h0, w_xh, w_hh, b))


def as64(inputs):
    return [t.detach().to(f64) for t in inputs]


def unroll(x, h0, w_xh, w_hh, b, *, cut=never, act=torch.tanh, carry=True):
    """The contract's loop; h is detached before every step t with cut(t)."""
    h, out = h0, []
    for t in range(x.shape[1]):
        if cut(t):
            h = h.detach()
        h = act(x[:, t] @ w_xh + (h if carry else h0) @ w_hh + b)  # (B, H)
        out.append(h)
    return torch.stack(out, dim=1)  # (B, T, H)


def torch_rnn(x, h0, w_xh, w_hh, b):
    """hs from torch.nn.RNN (tanh, batch_first), whose (out, in) weights are this kit's transposed."""
    D, H = w_xh.shape
    rnn = torch.nn.RNN(D, H, batch_first=True, dtype=x.dtype)
    with torch.no_grad():
        for p, value in zip(rnn.parameters(), (w_xh.T, w_hh.T, b, torch.zeros_like(b))):
            p.copy_(value)  # weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0
        return rnn(x, h0[None])[0]  # (B, T, H)


def autograd_grads(inputs, dhs, cut=never):
    """d sum(hs * dhs) / d (x, h0, w_xh, w_hh, b) by autograd through the loop, in float64."""
    leaves = [t.requires_grad_(True) for t in as64(inputs)]
    loss = (unroll(*leaves, cut=cut) * dhs.to(f64)).sum()
    found = torch.autograd.grad(loss, leaves, allow_unused=True)
    return {k: torch.zeros_like(leaf) if g is None else g for k, leaf, g in zip(KEYS, leaves, found)}


def sliding_window_grads(inputs, dhs, k):
    """The other reading of truncated BPTT: each dhs[:, t] flows back k steps from step t (wrong here)."""
    x, h0, w_xh, w_hh, b = leaves = [t.requires_grad_(True) for t in as64(inputs)]
    hs = unroll(*leaves).detach()
    loss = 0
    for t in range(x.shape[1]):
        start = max(0, t - k + 1)
        h = h0 if start == 0 else hs[:, start - 1]
        for s in range(start, t + 1):
            h = torch.tanh(x[:, s] @ w_xh + h @ w_hh + b)
        loss = loss + (h * dhs[:, t].to(f64)).sum()
    found = torch.autograd.grad(loss, leaves, allow_unused=True)
    return {key: torch.zeros_like(leaf) if g is None else g for key, leaf, g in zip(KEYS, leaves, found)}


def by_hand(inputs, dhs, *, cut=never, tanh_at="output", carry=True, back="w_hh.T", over_time=True,
            last_only=False, dw_hh_with="input"):
    """BPTT by hand with one mistake switched on (for naming likely causes only)."""
    x, h0, w_xh, w_hh, b = as64(inputs)
    dhs = dhs.to(f64)
    hs = unroll(x, h0, w_xh, w_hh, b)
    B, T, H = hs.shape
    prev = torch.cat([h0[:, None], hs[:, :-1]], dim=1)  # (B, T, H): the input state of each step
    dx, dw_xh, dw_hh = torch.zeros_like(x), torch.zeros_like(w_xh), torch.zeros_like(w_hh)
    db = torch.zeros(B, H, dtype=f64)  # per example, summed over B at the end
    dh_next = torch.zeros_like(h0)
    for t in reversed(range(T)):
        up = dhs[:, t] if not last_only or t == T - 1 else torch.zeros_like(h0)
        dh = up + dh_next if carry else up
        slope = {"output": 1 - hs[:, t] ** 2, "input": 1 - prev[:, t] ** 2, "none": torch.ones_like(h0)}[tanh_at]
        da = dh * slope
        dx[:, t] = da @ w_xh.T
        h_w = prev[:, t] if dw_hh_with == "input" else hs[:, t]
        if over_time:
            dw_xh, dw_hh, db = dw_xh + x[:, t].T @ da, dw_hh + h_w.T @ da, db + da
        else:
            dw_xh, dw_hh, db = x[:, t].T @ da, h_w.T @ da, da
        dh_next = da @ (w_hh.T if back == "w_hh.T" else w_hh)
        if cut(t):
            dh_next = torch.zeros_like(dh_next)
    return {"dx": dx, "dh0": dh_next, "dw_xh": dw_xh, "dw_hh": dw_hh, "db": db.sum(0), "db per example": db}


MISTAKES = {
    "the gradient does not flow back through time: dL/dh_{t-1} is dhs[:, t-1] PLUS da_t @ w_hh.T coming back "
    "from step t": dict(carry=False),
    "tanh' was taken at the step's input h_{t-1}; tanh'(a_t) = 1 - h_t^2 uses the step's OUTPUT h_t":
        dict(tanh_at="input"),
    "the tanh derivative (1 - h_t^2) is missing": dict(tanh_at="none"),
    "dL/dh_{t-1} was computed as da @ w_hh; the forward computes h_{t-1} @ w_hh, so it is da @ w_hh.T":
        dict(back="w_hh"),
    "only dhs[:, T-1] (the last step) was used: L = sum(hs * dhs) has a term at EVERY step, add dhs[:, t] "
    "at each step": dict(last_only=True),
    "only one step's contribution was kept: w_xh, w_hh and b are shared by all steps, so their gradients "
    "are summed (+=) over t": dict(over_time=False),
    "dw_hh used h_t; the recurrent weight multiplies the step's input h_{t-1}, so dw_hh = sum_t h_{t-1}.T @ da_t":
        dict(dw_hh_with="output"),
}


def grad_variants(key, inputs, dhs, want, cut=never, extra=None):
    """Likely causes for a wrong gradient `key`: mistakes of this key first, then those of the whole pass."""
    B = inputs[0].shape[0]
    own = {
        "dh0": {"dh0 is zero: h0 feeds step 0 through w_hh, so dh0 = da_0 @ w_hh.T": lambda: torch.zeros_like(want)},
        "dw_xh": {"dw_xh is transposed: it has w_xh's shape (D, H), sum_t x_t.T @ da_t": lambda: want.T},
        "dw_hh": {"dw_hh is transposed: sum_t h_{t-1}.T @ da_t, (H, B) @ (B, H)": lambda: want.T},
        "db": {"db was not summed over the batch: b is shared by all B examples, add da.sum(dim=0) at each step":
               lambda: by_hand(inputs, dhs, cut=cut)["db per example"],
               "db was averaged over the batch; the loss is a sum, so db sums da over batch and time": lambda: want / B},
    }.get(key, {})
    general = {cause: (lambda opts=opts: by_hand(inputs, dhs, cut=cut, **opts)[key]) for cause, opts in MISTAKES.items()}
    return {**own, **(extra or {}), **general}


def forward(impl, inputs):
    out = impl.rnn_forward(*inputs)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise AssertionError(f"`rnn_forward` must return a tuple (hs, cache), got {type(out).__name__}"
                             + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return out


def backward(impl, inputs, dhs, **kw):
    """rnn_forward, then rnn_backward on the cache of that same call."""
    cache = forward(impl, inputs)[1]
    grads = impl.rnn_backward(dhs, cache, **kw)
    if not isinstance(grads, dict):
        raise AssertionError(f"`rnn_backward` must return a dict with keys {', '.join(KEYS)}, got {type(grads).__name__}")
    missing = [k for k in KEYS if k not in grads]
    if missing:
        raise AssertionError(f"`rnn_backward` returned no {', '.join(missing)}: the dict needs the keys {', '.join(KEYS)}")
    return grads


# -- rnn_forward -------------------------------------------------------------------

@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_forward_returns_h_1_to_h_T_like_torch_nn_rnn(impl, shape, dtype):
    inputs = make_inputs(*SHAPES[shape], DTYPES[dtype])
    hs = forward(impl, inputs)[0]
    x, h0, w_xh, w_hh, b = as64(inputs)
    want = torch_rnn(x, h0, w_xh, w_hh, b)
    assert_close(hs, want.to(DTYPES[dtype]), f"hs ({shape}, {dtype})", dims="BTH", variants={
        "hs holds h_0 .. h_{T-1}: it starts at h_1, the state after the first step, and ends at h_T":
            torch.cat([h0[:, None], want[:, :-1]], dim=1),
        "hs includes h0: it holds the T states h_1 .. h_T only": torch.cat([h0[:, None], want], dim=1),
        "hs is time-major (T, B, H): stack the steps along dim=1 for (B, T, H)": want.transpose(0, 1),
        "w_hh was transposed: the recurrence is h_{t-1} @ w_hh (weights stored (in, out))":
            lambda: unroll(x, h0, w_xh, w_hh.T, b),
        "the bias b is missing": lambda: unroll(x, h0, w_xh, w_hh, 0 * b),
        "the tanh is missing": lambda: unroll(x, h0, w_xh, w_hh, b, act=lambda a: a),
        "every step used h0 instead of the previous step's h_{t-1}": lambda: unroll(x, h0, w_xh, w_hh, b, carry=False),
    })


# -- rnn_backward ------------------------------------------------------------------

@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_rnn_backward_matches_autograd_on_the_loop(impl, shape, dtype):
    B, T, D, H = SHAPES[shape]
    inputs = make_inputs(B, T, D, H, DTYPES[dtype])
    dhs = torch.randn(B, T, H, dtype=DTYPES[dtype])  # a loss on every step
    got = backward(impl, inputs, dhs)
    want = autograd_grads(inputs, dhs)
    for k in KEYS:
        assert_close(got[k], want[k].to(DTYPES[dtype]), f"{k} ({shape}, {dtype})", dims=DIMS[k],
                     variants=grad_variants(k, inputs, dhs, want[k]))


T_TRUNC = 6
TRUNCATIONS = {"None": None, "k=1": 1, "k=2": 2, "k=4 (does not divide T=6)": 4, "k=6 (=T)": 6, "k=9 (>T)": 9}


def truncation_variants(inputs, dhs, k):
    """Wrong truncations, each kept only where it differs from the contract's for this k and T."""
    T = dhs.shape[1]
    right = [chunks_of(k)(t) for t in range(T)]
    cuts = {
        f"truncate={k} was ignored: no gradient may cross the chunk boundaries": never,
        f"truncation boundary off by one: the gradient was cut before steps with t % {k} == 1; "
        f"the forward loop detaches h before every step t > 0 with t % {k} == 0": lambda t: t > 0 and t % k == 1,
        "truncation boundary off by one: the gradient was cut after the boundary step t (between steps t and t+1) "
        "instead of before it (between steps t-1 and t)": lambda t: t > 1 and (t - 1) % k == 0,
        "truncation boundary off by one: the gradient was cut one step early, before steps with (t+1) % k == 0":
            lambda t: t > 0 and (t + 1) % k == 0,
    }
    out = {cause: (lambda cut=cut: autograd_grads(inputs, dhs, cut)) for cause, cut in cuts.items()
           if [cut(t) for t in range(T)] != right}
    if 1 < k < T:  # k = 1 and k >= T: the window and the chunks cut the same graph
        out[f"sliding-window truncation: each dhs[:, t] was sent back {k} steps; the contract cuts the sequence "
            f"into chunks of {k} steps (h.detach() every {k} steps) and backpropagates within each chunk"] = \
            lambda: sliding_window_grads(inputs, dhs, k)
    return out


@pytest.mark.points(1)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("truncate", TRUNCATIONS)
def test_truncated_bptt_matches_autograd_on_the_detached_loop(impl, truncate, dtype):
    k = TRUNCATIONS[truncate]
    B, D, H = 2, 3, 4
    inputs = make_inputs(B, T_TRUNC, D, H, DTYPES[dtype])
    dhs = torch.randn(B, T_TRUNC, H, dtype=DTYPES[dtype])
    got = backward(impl, inputs, dhs, truncate=k)
    want = autograd_grads(inputs, dhs, chunks_of(k))
    wrong = truncation_variants(inputs, dhs, k) if k else {}
    for key in KEYS:
        extra = {cause: (lambda f=f: f()[key]) for cause, f in wrong.items()}
        assert_close(got[key], want[key].to(DTYPES[dtype]), f"{key} with truncate={k}, T={T_TRUNC} ({dtype})",
                     dims=DIMS[key], variants=grad_variants(key, inputs, dhs, want[key], chunks_of(k), extra))


# -- grad_norms_through_time ---------------------------------------------------------

def autograd_norms(inputs, dh_last):
    """(||dL/dh_t|| for t = 0..T, ||dL/da_t|| for t = 1..T) by autograd, L = sum(h_T * dh_last)."""
    x, h0, w_xh, w_hh, b = as64(inputs)
    h0.requires_grad_(True)
    h, states = h0, []
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b)
        states.append(h)
    grads = torch.autograd.grad((states[-1] * dh_last.to(f64)).sum(), [h0, *states])
    norms = torch.stack([torch.linalg.vector_norm(g) for g in grads])  # (T+1,)
    pre = torch.stack([torch.linalg.vector_norm(g * (1 - s.detach() ** 2)) for g, s in zip(grads[1:], states)])
    per_example = torch.stack([torch.linalg.vector_norm(g, dim=1) for g in grads[1:]])  # (T, B)
    return norms, pre, per_example


def norms_by_hand(inputs, dh_last, *, tanh_of="output", back="w_hh.T"):
    """grad_norms_through_time with one mistake switched on (for naming likely causes only)."""
    x, h0, w_xh, w_hh, b = as64(inputs)
    hs = unroll(x, h0, w_xh, w_hh, b)
    g, out = dh_last.to(f64), [torch.linalg.vector_norm(dh_last.to(f64))]
    for t in range(hs.shape[1] - 1, 0, -1):
        h = hs[:, t] if tanh_of == "output" else hs[:, t - 1]
        g = (g * (1 - h ** 2)) @ (w_hh.T if back == "w_hh.T" else w_hh)
        out.append(torch.linalg.vector_norm(g))
    return torch.stack(out[::-1])


def check_norms(impl, inputs, dh_last, name):
    dtype = inputs[0].dtype
    cache = forward(impl, inputs)[1]
    got = impl.grad_norms_through_time(cache, dh_last)
    norms, pre, per_example = autograd_norms(inputs, dh_last)
    want = norms[1:]  # ||dL/dh_1|| .. ||dL/dh_T||
    assert_close(got, want.to(dtype), name, dims="T", variants={
        "the norms are in reverse order: entry 0 is ||dL/dh_1|| (the earliest state), the last is ||dh_last||":
            want.flip(0),
        "shifted by one step: entry t is ||dL/dh_{t+1}||, from h_1 up to h_T (the last entry is ||dh_last||), "
        "not from h_0": norms[:-1],
        "these are norms of dL/da_t (after multiplying by tanh'), not of dL/dh_t": pre,
        "squared norms: take the square root of the sum of squares": want ** 2,
        "per-example norms were summed: take ONE Frobenius norm over all of (B, H)": per_example.sum(1),
        "per-example norms were averaged: take ONE Frobenius norm over all of (B, H)": per_example.mean(1),
        "tanh' at the wrong state: stepping back from h_{t+1} to h_t multiplies by 1 - h_{t+1}^2":
            lambda: norms_by_hand(inputs, dh_last, tanh_of="input"),
        "stepped back with @ w_hh; dL/dh_t = (dL/dh_{t+1} * (1 - h_{t+1}^2)) @ w_hh.T":
            lambda: norms_by_hand(inputs, dh_last, back="w_hh"),
    })
    return want


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_grad_norms_equal_autograds_norms_of_dL_dh(impl, shape, dtype):
    B, T, D, H = SHAPES[shape]
    inputs = make_inputs(B, T, D, H, DTYPES[dtype])
    check_norms(impl, inputs, torch.randn(B, H, dtype=DTYPES[dtype]), f"gradient norms ({shape}, {dtype})")


def orthogonal(H, gain):
    q, _ = torch.linalg.qr(torch.randn(H, H, dtype=f64))
    return gain * q  # every singular value equals gain


@pytest.mark.points(2)
def test_gradient_norms_vanish_for_small_recurrent_weights(impl):
    B, T, D, H = 2, 8, 3, 4
    x, h0, w_xh, _, b = make_inputs(B, T, D, H)
    inputs = (x, h0, w_xh, 0.1 * torch.eye(H, dtype=f64), b)
    want = check_norms(impl, inputs, torch.randn(B, H, dtype=f64), "gradient norms for w_hh = 0.1 I (vanishing)")
    assert bool((want[:-1] < 0.11 * want[1:]).all()), "grader setup: the norms should shrink at least 9x per step back"


@pytest.mark.points(2)
def test_gradient_norms_explode_for_large_weights_while_tanh_is_linear(impl):
    # Largest singular value 1.5 > 1 and pre-activations near 0, where tanh' ~ 1: the norm grows 1.5x per step.
    B, T, D, H = 2, 8, 3, 4
    x, _, w_xh, _, _ = make_inputs(B, T, D, H)
    inputs = (1e-3 * x, torch.zeros(B, H, dtype=f64), w_xh, orthogonal(H, 1.5), torch.zeros(H, dtype=f64))
    want = check_norms(impl, inputs, torch.randn(B, H, dtype=f64),
                       "gradient norms for w_hh = 1.5 Q, Q orthogonal, tanh in its linear range (exploding)")
    assert bool((want[:-1] > 1.4 * want[1:]).all()), "grader setup: the norms should grow about 1.5x per step back"


@pytest.mark.points(2)
def test_large_weights_do_not_explode_when_tanh_saturates(impl):
    # Singular values 3 > 1 are necessary, not sufficient, for exploding (Pascanu et al. 2013): with every
    # pre-activation beyond |a| > 1.5 (b = 8 outweighs |h @ w_hh| <= 3 sqrt(H) = 6), tanh' < 0.2 and the norms vanish.
    B, T, D, H = 2, 8, 3, 4
    x, h0, w_xh, _, _ = make_inputs(B, T, D, H)
    inputs = (0.1 * x, h0.clamp(-1, 1), 0.1 * w_xh, orthogonal(H, 3.0), torch.full((H,), 8.0, dtype=f64))
    want = check_norms(impl, inputs, torch.randn(B, H, dtype=f64),
                       "gradient norms for w_hh = 3 Q with saturated tanh (vanishing despite large weights)")
    assert bool((want[:-1] < want[1:]).all()), "grader setup: saturated tanh should make the norms shrink"
