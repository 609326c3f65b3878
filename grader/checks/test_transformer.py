"""Grader for `transformer`: positional encoding, layer norm, feed-forward, multi-head attention, layers.

Expected values come from PyTorch, in this process: F.layer_norm, nn.MultiheadAttention,
nn.Transformer.generate_square_subsequent_mask, nn.TransformerEncoderLayer and
nn.TransformerDecoderLayer (batch_first=True, ReLU, dropout=0.1 but eval mode), and
the formula of Vaswani et al. 2017 computed in float64 for the positional encoding.
Every module gets random weights and biases (PyTorch initialises the biases to 0 and
the norms to 1, which would hide mistakes), and its state_dict() is the `params`.

PyTorch's eval-mode "fast path" (torch._transformer_encoder_layer_fwd, and
torch._native_multi_head_attention) is switched off while expected values are
computed, so they follow the documented math. On the CPU (torch 2.13) the fast
path is taken for float64 too, agrees with the documented math to 7e-16 (float64)
and 5e-7 (float32), and computes padded query positions like any other; the zeros
and nested tensors at padded positions come from nn.TransformerEncoder, not the layer.

The wrong variants below are the mistakes learners make, used only to name the
likely cause of a mismatch.

Shapes: B batch, L query (target) length, S key (source) length, T sequence length,
D model dim, H heads, E = D // H head dim, F feed-forward dim.
"""

import math
from contextlib import contextmanager

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from grader.compare import assert_close
from grader.sandbox import SubmissionError

f64, f32 = torch.float64, torch.float32
NEG_INF = float("-inf")


def rand(*shape, dtype=f64, scale=1.0, grad=False):
    return (torch.randn(*shape, dtype=dtype) * scale).requires_grad_(grad)


@contextmanager
def no_fastpath():
    """Expected values from the documented math, never from PyTorch's fused eval-mode kernels."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


@contextmanager
def hint_on_error(hint):
    """Add a hint to a crash of the submission (not to timeouts, forbidden calls or stubs)."""
    try:
        yield
    except SubmissionError as exc:
        if type(exc) is not SubmissionError or "not implemented yet" in str(exc):
            raise
        raise SubmissionError(f"{exc}; {hint}") from None


@contextmanager
def layer_hint():
    """A layer mismatch that no layer-level mistake explains most often comes from a part."""
    try:
        yield
    except AssertionError as exc:
        if "likely cause" in str(exc) or "in place" in str(exc):
            raise
        raise AssertionError(f"{exc}; no layer-level mistake explains it: if layer_norm, feed_forward and "
                             "multi_head_attention pass their own tests, compare the order of norms, residuals "
                             "and masks with the module's forward") from None


def unpack(value, names, fn):
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        raise AssertionError(f"`{fn}` must return a tuple ({', '.join(names)}), got {type(value).__name__}"
                             + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    return value


def grad_of(t, name):
    if t.grad is None:
        raise AssertionError(f"{name}: no gradient reached this input; the output is cut off from it "
                             "(built with torch.tensor(...), .detach(), .item() or an in-place copy)")
    return t.grad


def randomized(module):
    """Random weights AND biases: PyTorch's zero biases and unit norms would hide mistakes."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]) if p.dim() == 2 else torch.randn_like(p) * 0.5)
    return module.eval()


def params_of(module, grad=False):
    return {k: v.detach().clone().requires_grad_(grad) for k, v in module.state_dict().items()}


def padding(B, S, p=0.4):
    """A (B, S) bool key_padding_mask, True = padded; each row keeps a real key AND a padded one when S > 1,
    so that the inverted mask leaves no row fully blocked either."""
    mask = torch.rand(B, S) < p
    mask[:, 0] = False
    if S > 1:
        mask[:, -1] = True
    return mask


def call_without_tensor_inputs(impl, fn, *args):
    """Call a function that takes no tensor: it returns one on torch's default device, the CPU.

    The engine checks that outputs live on the inputs' device, which on a CUDA run means
    cuda; with no tensor input a correct function (like PyTorch's own
    generate_square_subsequent_mask) returns a CPU tensor, so hold it to the CPU here.
    """
    if impl.device == "cpu":
        return getattr(impl, fn)(*args)
    impl._ensure_child()  # start the child on the real device first: it keeps that device
    saved, impl.device = impl.device, "cpu"
    try:
        return getattr(impl, fn)(*args)
    finally:
        impl.device = saved


# -- sinusoidal_positional_encoding ----------------------------------------------------

def pe_table(max_len, d, *, exponent="pair", first="sin", offset=0, layout="interleaved"):
    """PE in float64 from the formula; the keyword arguments build the wrong variants."""
    p = torch.arange(max_len, dtype=f64)[:, None] + offset  # (max_len, 1)
    j = torch.arange(d, dtype=f64)  # (D,)
    k = {"pair": j - j % 2, "i": j // 2, "column": j}[exponent]  # the 2i of column j
    angle = p / 10000.0 ** (k / d)  # (max_len, D)
    if layout == "halves":  # sines in the first ceil(D/2) columns, cosines after
        half = (d + 1) // 2
        freq = 10000.0 ** (-2 * torch.arange(half, dtype=f64) / d)
        return torch.cat([torch.sin(p * freq), torch.cos(p * freq[: d // 2])], dim=1)
    even = j % 2 == 0
    if first == "cos":
        even = ~even
    return torch.where(even, torch.sin(angle), torch.cos(angle))


def pe_variants(max_len, d):
    return {
        "sin and cos swapped: even columns 2i hold sin, odd columns 2i+1 hold cos":
            lambda: pe_table(max_len, d, first="cos"),
        "exponent i/d_model instead of 2i/d_model: column pair (2i, 2i+1) uses 10000^(2i/d_model), "
        "with 2i the EVEN column index": lambda: pe_table(max_len, d, exponent="i"),
        "each column used its own index j in the exponent: columns 2i and 2i+1 share 10000^(2i/d_model)":
            lambda: pe_table(max_len, d, exponent="column"),
        "sines in the first half and cosines in the second half: the columns interleave, sin at 2i, cos at 2i+1":
            lambda: pe_table(max_len, d, layout="halves"),
        "positions counted from 1: row p is position p, starting at 0":
            lambda: pe_table(max_len, d, offset=1),
    }


def check_pe(impl, max_len, d, atol32=None):
    with hint_on_error("an odd d_model has (d_model + 1) // 2 sine columns but only d_model // 2 cosine ones"):
        got = call_without_tensor_inputs(impl, "sinusoidal_positional_encoding", max_len, d)
    if isinstance(got, torch.Tensor) and got.dtype not in (f32, f64):
        raise AssertionError(f"positional encoding: expected a float32 (torch's default dtype) or float64 table, "
                             f"got {str(got.dtype).removeprefix('torch.')}")
    dtype = got.dtype if isinstance(got, torch.Tensor) else f32
    tol = dict(rtol=0.0, atol=atol32) if dtype == f32 and atol32 else {}
    assert_close(got, pe_table(max_len, d).to(dtype), f"positional encoding ({max_len}, {d})", dims="PD",
                 variants=pe_variants(max_len, d), **tol)


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("max_len,d_model", [(6, 8), (9, 5), (1, 1), (3, 12)],
                         ids=["6x8", "odd d_model 9x5", "1x1", "3x12"])
def test_positional_encoding_equals_the_formula(impl, max_len, d_model):
    check_pe(impl, max_len, d_model)


@pytest.mark.points(2)
def test_positional_encoding_up_to_position_512_is_within_float32_rounding(impl):
    # A float32 angle p / 10000^(2i/d) near p = 512 carries the frequency's rounding times 512
    # plus half a float32 step at 512: 2e-5 to 3.4e-5 in seven common float32 formulations,
    # up to ~9e-5 in the worst case. Every catalogued mistake is off by O(1).
    check_pe(impl, 513, 64, atol32=1e-4)


# -- layer_norm ----------------------------------------------------------------------------

def ln(x, w, b, eps=1e-5, *, correction=0, eps_outside=False, centre=True):
    """A configurable layer norm for the wrong variants (never the expected value)."""
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, correction=correction, keepdim=True)
    if not centre:  # E[x^2] - E[x]^2 computed in the input's dtype
        var = (x * x).mean(-1, keepdim=True) - mean * mean
    std = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
    return (x - mean) / std * w + b


def ln_variants(x, w, b, eps=1e-5):
    return {
        "unbiased variance (divided by D - 1): layer norm uses the biased variance, mean((x - mean)^2)":
            lambda: ln(x, w, b, eps, correction=1),
        "eps added outside the square root: PyTorch divides by sqrt(var + eps), not sqrt(var) + eps":
            lambda: ln(x, w, b, eps, eps_outside=True),
        "`eps` was ignored: use the eps argument (default 1e-5)": lambda: ln(x, w, b, 1e-5) if eps != 1e-5 else None,
        "no eps at all: divide by sqrt(var + eps)": lambda: ln(x, w, b, 0.0),
        "weight and bias swapped: y = x_hat * weight + bias": lambda: ln(x, b, w, eps),
    }


def check_ln(impl, x, w, b, what, eps=None, **tol):
    kw = {} if eps is None else {"eps": eps}
    want = F.layer_norm(x, (x.shape[-1],), w, b, **kw)
    assert_close(impl.layer_norm(x, w, b, **kw), want, f"layer_norm{what}",
                 variants=ln_variants(x, w, b, 1e-5 if eps is None else eps), **tol)


LN_SHAPES = {"(B=2,T=5,D=8)": (2, 5, 8), "(B=1,T=1,D=3)": (1, 1, 3), "(2,3,4,6) extra dim": (2, 3, 4, 6)}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("shape", LN_SHAPES)
def test_layer_norm_matches_f_layer_norm_over_the_last_dim(impl, shape):
    x = rand(*LN_SHAPES[shape], scale=2.0) + 0.5
    D = x.shape[-1]
    check_ln(impl, x, rand(D), rand(D), f" {shape}")


@pytest.mark.points(2)
def test_layer_norm_puts_eps_inside_the_square_root(impl):
    # Rows with variance ~1e-6 < eps: where eps goes decides the result.
    x, w, b = rand(3, 4, 6, scale=1e-3), rand(6), rand(6)
    check_ln(impl, x, w, b, " of rows with variance 1e-6 (below eps)")
    check_ln(impl, x, w, b, " with eps=0.1", eps=0.1)


@pytest.mark.points(1)
def test_layer_norm_is_accurate_for_inputs_offset_by_1e4(impl):
    for dtype, tol in ((f32, dict(rtol=1e-3, atol=1e-2)), (f64, {})):
        # float32 spacing near 1e4 is 1e-3, so any float32 mean is off by ~1e-3: PyTorch's too.
        x = (rand(2, 5, 16, dtype=dtype, scale=3.0) + 1e4)
        w, b = rand(16, dtype=dtype), rand(16, dtype=dtype)
        want = F.layer_norm(x, (16,), w, b)
        assert_close(impl.layer_norm(x, w, b), want, f"layer_norm of {str(dtype)[6:]} inputs near 1e4",
                     variants={"the variance as E[x^2] - E[x]^2 cancels catastrophically near 1e4: "
                               "subtract the mean first, var = mean((x - mean)^2)":
                               lambda: ln(x, w, b, centre=False)}, **tol)


@pytest.mark.points(2)
def test_layer_norm_gradients_match_autograd_through_f_layer_norm(impl):
    x, w, b = rand(2, 3, 5, grad=True), rand(5, grad=True), rand(5, grad=True)
    g = rand(2, 3, 5)
    res = impl.call("layer_norm", x, w, b, grad_outputs=g)
    F.layer_norm(x, (5,), w, b).backward(g)
    for name, got, want in zip(("x", "weight", "bias"), res.args, (x, w, b)):
        assert_close(grad_of(got, f"d layer_norm / d {name}"), want.grad, f"d layer_norm / d {name}")


@pytest.mark.points(1)
def test_layer_norm_keeps_float32(impl):
    x, w, b = rand(3, 4, 8, dtype=f32), rand(8, dtype=f32), rand(8, dtype=f32)
    check_ln(impl, x, w, b, " in float32")


# -- feed_forward ----------------------------------------------------------------------------

FF_SHAPES = {"(B=2,T=5,D=4,F=16)": (2, 5, 4, 16), "(B=1,T=1,D=3,F=5)": (1, 1, 3, 5),
             "float32 (B=2,T=3,D=F=6)": (2, 3, 6, 6)}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("shape", FF_SHAPES)
def test_feed_forward_is_linear2_relu_linear1(impl, shape):
    B, T, D, Fd = FF_SHAPES[shape]
    dtype = f32 if "float32" in shape else f64
    x, w1, b1, w2, b2 = rand(B, T, D, dtype=dtype), rand(Fd, D, dtype=dtype), rand(Fd, dtype=dtype), \
        rand(D, Fd, dtype=dtype), rand(D, dtype=dtype)
    with hint_on_error("weights use the nn.Linear layout: w1 is (F, D), w2 is (D, F), applied as x @ w1.T"):
        got = impl.feed_forward(x, w1, b1, w2, b2)
    assert_close(got, F.linear(F.relu(F.linear(x, w1, b1)), w2, b2), f"feed_forward {shape}", dims="BTD",
                 variants={
                     "weights used as (in, out): nn.Linear stores W as (out, in) and applies x @ W.T":
                         lambda: F.relu(x @ w1 + b1) @ w2 + b2,
                     "no ReLU between the two linear maps": lambda: F.linear(F.linear(x, w1, b1), w2, b2),
                     "ReLU after the second linear map too: the output is linear2(relu(linear1(x)))":
                         lambda: F.relu(F.linear(F.relu(F.linear(x, w1, b1)), w2, b2)),
                 })


# -- multi_head_attention -------------------------------------------------------------------

def mha_module(D, H, dtype=f64):
    return randomized(nn.MultiheadAttention(D, H, batch_first=True, dtype=dtype))


def torch_mha(m, q, k, v, **masks):
    with no_fastpath():
        return m(q, k, v, need_weights=True, average_attn_weights=True, **masks)


def weights_of(m):
    return dict(in_proj_weight=m.in_proj_weight.detach(), in_proj_bias=m.in_proj_bias.detach(),
                out_proj_weight=m.out_proj.weight.detach(), out_proj_bias=m.out_proj.bias.detach())


def mha(q, k, v, H, w, *, key_padding_mask=None, attn_mask=None, split="heads", scale=None, heads="mean",
        head_major_3d=False, softmax_dim=-1, out_proj=True):
    """A configurable multi-head attention for the wrong variants (never the expected value)."""
    (B, L, D), S = q.shape, k.shape[1]
    E = D // H
    wq, wk, wv = w["in_proj_weight"].chunk(3)
    bq, bk, bv = w["in_proj_bias"].chunk(3)

    def split_heads(t, n):
        if split == "no-transpose":  # reshape (B, n, D) straight to (B, H, n, E)
            return t.reshape(B, H, n, E)
        return t.reshape(B, n, H, E).transpose(1, 2)

    qh, kh, vh = split_heads(q @ wq.T + bq, L), split_heads(k @ wk.T + bk, S), split_heads(v @ wv.T + bv, S)
    s = qh @ kh.transpose(-2, -1) * (1 / math.sqrt(E) if scale is None else scale)  # (B, H, L, S)
    for mask, shape in ((attn_mask, None), (key_padding_mask, (B, 1, 1, S))):
        if mask is None:
            continue
        add = torch.zeros(mask.shape, dtype=q.dtype).masked_fill(mask, NEG_INF) if mask.dtype == torch.bool else mask
        if mask.dim() == 3:
            shape = (H, B, L, S) if head_major_3d else (B, H, L, S)
        add = add.reshape(shape) if shape else add
        s = s + (add.transpose(0, 1) if mask.dim() == 3 and head_major_3d else add)
    a = torch.softmax(s, dim=softmax_dim)
    o = a @ vh  # (B, H, L, E)
    o = o.reshape(B, L, D) if split == "no-transpose" else o.transpose(1, 2).reshape(B, L, D)
    o = F.linear(o, w["out_proj_weight"], w["out_proj_bias"]) if out_proj else o
    a = {"mean": a.mean(1), "sum": a.sum(1), "last": a[:, -1], "none": a}[heads]
    return o, a


def mha_variants(q, k, v, H, w, masks, which):
    """Likely causes for the output (which=0) or the averaged weights (which=1)."""
    D = q.shape[-1]
    pick = lambda **kw: (lambda: mha(q, k, v, H, w, **masks, **kw)[which])  # noqa: E731
    out = {
        "heads split without the transpose: view (B, L, D) as (B, L, H, E), then .transpose(1, 2) to (B, H, L, E); "
        "a plain reshape to (B, H, L, E) mixes positions and heads": pick(split="no-transpose"),
        f"scaled by 1/sqrt(D) = 1/sqrt({D}), the model dim: scale each head by 1/sqrt(E), E = D / H = {D // H}":
            pick(scale=1 / math.sqrt(D)),
        "no scaling: divide the scores by sqrt(E), E = D / H the head dim": pick(scale=1.0),
        "softmax over the query axis L instead of the key axis S": pick(softmax_dim=-2),
    }
    if which == 0:
        out["out_proj was not applied: the concatenated heads go through out_proj_weight, out_proj_bias"] = \
            pick(out_proj=False)
    else:
        out[f"weights summed over the {H} heads: average them, weights.mean(dim=1)"] = pick(heads="sum")
        out["weights of the last head only: average over all heads"] = pick(heads="last")
        out["weights returned per head (B, H, L, S): average over the heads to (B, L, S)"] = pick(heads="none")
    return out


def check_mha(impl, q, k, v, H, m, what, variants=None, **masks):
    w = weights_of(m)
    want_out, want_w = torch_mha(m, q, k, v, **masks)
    got = impl.multi_head_attention(q, k, v, num_heads=H, **w, **masks)
    got_out, got_w = unpack(got, ("out", "weights"), "multi_head_attention")
    for i, (name, g, e, dims) in enumerate((("output", got_out, want_out, "BLD"), ("averaged weights", got_w, want_w, "BLS"))):
        more = {c: (lambda f=f, i=i: f()[i]) for c, f in (variants or {}).items()}  # each gives (out, weights)
        assert_close(g, e, f"attention {name}{what}", dims=dims,
                     variants={**more, **mha_variants(q, k, v, H, w, masks, i)})


MHA_SHAPES = {"B=2,T=5,D=8,H=2": (2, 5, 8, 2), "B=1,T=1,D=4,H=1": (1, 1, 4, 1),
              "B=2,T=4,D=6,H=3": (2, 4, 6, 3), "B=3,T=3,D=4,H=4 (E=1)": (3, 3, 4, 4)}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("shape", MHA_SHAPES)
def test_self_attention_matches_nn_multihead_attention(impl, shape):
    B, T, D, H = MHA_SHAPES[shape]
    x = rand(B, T, D)
    check_mha(impl, x, x, x, H, mha_module(D, H), f" (self-attention, {shape})")


@pytest.mark.public
@pytest.mark.points(2)
def test_cross_attention_with_other_keys_and_values_and_l_not_s(impl):
    q, k, v = rand(2, 3, 8), rand(2, 7, 8), rand(2, 7, 8)
    m = mha_module(8, 2)
    w = weights_of(m)
    check_mha(impl, q, k, v, 2, m, " (cross-attention, B=2, L=3, S=7, D=8, H=2)",
              variants={"`key` and `value` swapped: the scores use the keys, the weighted sum uses the values":
                        lambda: mha(q, v, k, 2, w)})


def padding_variants(q, kv, H, w, kpm):
    return {
        "key_padding_mask inverted: in nn.MultiheadAttention True means BLOCKED (a padded key), "
        "the opposite of F.scaled_dot_product_attention's bool masks":
            lambda: mha(q, kv, kv, H, w, key_padding_mask=~kpm),
        "key_padding_mask was ignored: add -inf to the scores of padded keys": lambda: mha(q, kv, kv, H, w),
    }


@pytest.mark.points(2)
def test_key_padding_mask_true_means_blocked(impl):
    q, kv = rand(3, 4, 8), rand(3, 6, 8)
    kpm = padding(3, 6)
    m = mha_module(8, 2)
    check_mha(impl, q, kv, kv, 2, m, " with a (B, S) key_padding_mask",
              variants=padding_variants(q, kv, 2, weights_of(m), kpm), key_padding_mask=kpm)


def attn_mask_variants(q, kv, H, w, mask):
    out = {"attn_mask was ignored: add it to the scores (a bool one as -inf where True)":
           lambda: mha(q, kv, kv, H, w)}
    if mask.dtype == torch.bool:
        out["bool attn_mask inverted: in nn.MultiheadAttention True means BLOCKED, the opposite of "
            "F.scaled_dot_product_attention"] = lambda: mha(q, kv, kv, H, w, attn_mask=~mask)
    if mask.dim() == 3:
        out["3-D attn_mask read head-major: its rows are batch-major, row b * H + h, so view it as (B, H, L, S)"] = \
            lambda: mha(q, kv, kv, H, w, attn_mask=mask, head_major_3d=True)
    return out


def some_blocked(*shape):
    """A bool mask, True = blocked, that leaves every row (last dim) an allowed and a blocked key."""
    mask = torch.rand(*shape) < 0.4
    mask[..., 0] = False
    mask[..., -1] = True
    return mask


ATTN_MASKS = {
    "bool (L,S)": lambda B, H, L, S: some_blocked(L, S),
    "float (L,S)": lambda B, H, L, S: rand(L, S).masked_fill(some_blocked(L, S), NEG_INF),
    "bool (B*H,L,S)": lambda B, H, L, S: some_blocked(B * H, L, S),
    "float (B*H,L,S)": lambda B, H, L, S: rand(B * H, L, S).masked_fill(some_blocked(B * H, L, S), NEG_INF),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("kind", ATTN_MASKS)
def test_attn_mask_bool_true_means_blocked_float_is_added(impl, kind):
    B, H, L, S = 2, 3, 4, 5
    q, kv = rand(B, L, 6), rand(B, S, 6)
    mask = ATTN_MASKS[kind](B, H, L, S)
    m = mha_module(6, H)
    w = weights_of(m)
    with hint_on_error("a 3-D attn_mask is (B * num_heads, L, S): view it as (B, H, L, S) before adding it"):
        check_mha(impl, q, kv, kv, H, m, f" with a {kind} attn_mask", variants=attn_mask_variants(q, kv, H, w, mask),
                  attn_mask=mask)


@pytest.mark.points(1)
def test_attn_mask_and_key_padding_mask_together(impl):
    q = rand(2, 4, 8)
    m = mha_module(8, 2)
    am, kpm = some_blocked(4, 4), padding(2, 4)
    am[:, 1] = False  # key 1 is real in batch 0 and allowed by am: no row is fully blocked
    kpm[:, 1] = False
    w = weights_of(m)
    check_mha(impl, q, q, q, 2, m, " with attn_mask (L,S) and key_padding_mask (B,S) together",
              variants={"both bool masks inverted: in nn.MultiheadAttention True means BLOCKED":
                        lambda: mha(q, q, q, 2, w, attn_mask=~am, key_padding_mask=~kpm),
                        "key_padding_mask was ignored when attn_mask is given too: add both":
                        lambda: mha(q, q, q, 2, w, attn_mask=am),
                        "attn_mask was ignored when key_padding_mask is given too: add both":
                        lambda: mha(q, q, q, 2, w, key_padding_mask=kpm)},
              attn_mask=am, key_padding_mask=kpm)


@pytest.mark.points(1)
def test_multi_head_attention_keeps_float32(impl):
    q, kv, kpm = rand(2, 3, 8, dtype=f32), rand(2, 5, 8, dtype=f32), padding(2, 5)
    m = mha_module(8, 2, f32)
    check_mha(impl, q, kv, kv, 2, m, " in float32", variants=padding_variants(q, kv, 2, weights_of(m), kpm),
              key_padding_mask=kpm)


@pytest.mark.points(2)
def test_multi_head_attention_gradients_match_autograd_through_the_module(impl):
    m = mha_module(6, 3)
    q, k, v = rand(2, 3, 6, grad=True), rand(2, 4, 6, grad=True), rand(2, 4, 6, grad=True)
    kpm = padding(2, 4)
    names = ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")
    w = {n: t.detach().clone().requires_grad_(True) for n, t in weights_of(m).items()}
    g_out, g_w = rand(2, 3, 6), rand(2, 3, 4)
    res = impl.call("multi_head_attention", q, k, v, grad_outputs=(g_out, g_w), num_heads=3, **w, key_padding_mask=kpm)
    out, weights = torch_mha(m, q, k, v, key_padding_mask=kpm)
    (out * g_out).sum().add((weights * g_w).sum()).backward()
    want = {"query": q.grad, "key": k.grad, "value": v.grad, "in_proj_weight": m.in_proj_weight.grad,
            "in_proj_bias": m.in_proj_bias.grad, "out_proj_weight": m.out_proj.weight.grad,
            "out_proj_bias": m.out_proj.bias.grad}
    got = dict(zip(("query", "key", "value"), res.args)) | {n: res.kwargs[n] for n in names}
    dims = {"query": "BLD", "key": "BSD", "value": "BSD"}
    for name, t in got.items():
        assert_close(grad_of(t, f"d loss / d {name}"), want[name], f"d loss / d {name} (loss uses output and weights)",
                     dims=dims.get(name))


# -- causal_mask --------------------------------------------------------------------------------

@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("size", [1, 6])
def test_causal_mask_equals_generate_square_subsequent_mask(impl, size):
    got = call_without_tensor_inputs(impl, "causal_mask", size)
    want = nn.Transformer.generate_square_subsequent_mask(size)
    if isinstance(got, torch.Tensor) and got.dtype == torch.bool:
        raise AssertionError("causal_mask must be a float mask (0 allowed, -inf blocked) like "
                             "generate_square_subsequent_mask, got a bool one: a bool mask means True = blocked to "
                             "nn.MultiheadAttention but True = allowed to F.scaled_dot_product_attention")
    if isinstance(got, torch.Tensor) and got.dtype != want.dtype:
        raise AssertionError(f"causal_mask: expected dtype {str(want.dtype)[6:]} (torch's default dtype, as "
                             f"generate_square_subsequent_mask returns), got {str(got.dtype)[6:]}")
    ones = torch.ones(size, size)
    blocked = lambda keep: torch.zeros(size, size).masked_fill(keep == 0, NEG_INF)  # noqa: E731
    assert_close(got, want, f"causal mask ({size}, {size})", dims="LS", variants={
        "the diagonal is blocked too: position i may attend to itself (-inf strictly above the diagonal, triu(diagonal=1))":
            lambda: blocked(ones.tril(-1)),
        "blocked below the diagonal instead of above: position i attends to 0..i":
            lambda: blocked(ones.triu()),
        "a large negative number instead of -inf: generate_square_subsequent_mask uses -inf":
            lambda: want.clamp_min(-1e9),
    })


# -- encoder_layer ---------------------------------------------------------------------------------

def encoder_module(D, H, Fd, norm_first, dtype=f64):
    return randomized(nn.TransformerEncoderLayer(D, H, Fd, dropout=0.1, batch_first=True,
                                                 norm_first=norm_first, dtype=dtype))


def encoder_math(m, x, kpm, norm_first, *, attn_res=True, ff_res=True, res_from_norm=False, final_norm=False):
    """nn.TransformerEncoderLayer's math from its sub-layers, with switches for the wrong variants."""
    sa = lambda h: m.self_attn(h, h, h, key_padding_mask=kpm, need_weights=False)[0]  # noqa: E731
    ff = lambda h: m.linear2(F.relu(m.linear1(h)))  # noqa: E731
    with no_fastpath(), torch.no_grad():
        if norm_first:
            h = m.norm1(x)
            x = (h if res_from_norm else x if attn_res else 0) + sa(h)
            x = (x if ff_res else 0) + ff(m.norm2(x))
            return m.norm2(x) if final_norm else x
        x = m.norm1((x if attn_res else 0) + sa(x))
        return m.norm2((x if ff_res else 0) + ff(x))


def encoder_variants(m, x, kpm, norm_first):
    run = lambda mask=kpm, **kw: (lambda: encoder_math(m, x, mask, norm_first, **kw))  # noqa: E731
    out = {
        "post-norm and pre-norm swapped: norm_first=False is x = norm1(x + attn(x)), "
        "norm_first=True is x = x + attn(norm1(x))": lambda: encoder_math(m, x, kpm, not norm_first),
        "no residual around the feed-forward": run(ff_res=False),
        "no residual around the self-attention": run(attn_res=False),
    }
    if norm_first:
        out["the residual started from norm1(x): add attn(norm1(x)) to x itself"] = run(res_from_norm=True)
        out["a final layer norm was added: a pre-norm layer returns x + ff(norm2(x)) un-normalised"] = \
            run(final_norm=True)
    if kpm is not None:
        out["src_key_padding_mask inverted: True marks PADDED positions, which are blocked as keys"] = run(~kpm)
        out["src_key_padding_mask was ignored: padded positions must be blocked as keys"] = run(None)
    return out


def encoder_forward(m, x, kpm):
    with no_fastpath():
        return m(x, src_key_padding_mask=kpm)


def check_encoder(impl, m, x, H, norm_first, what, kpm=None):
    kw = {} if kpm is None else {"src_key_padding_mask": kpm}
    want = encoder_forward(m, x, kpm)
    got = impl.encoder_layer(x, params_of(m), num_heads=H, norm_first=norm_first, **kw)
    with layer_hint():
        assert_close(got, want, f"encoder_layer output ({'pre' if norm_first else 'post'}-norm, {what})",
                     dims="BTD", variants=encoder_variants(m, x, kpm, norm_first))


LAYER_SHAPES = {"B=2,T=5,D=8,H=2,F=16": (2, 5, 8, 2, 16), "B=1,T=1,D=4,H=1,F=6": (1, 1, 4, 1, 6),
                "B=3,T=4,D=6,H=3,F=10": (3, 4, 6, 3, 10)}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_encoder_layer_matches_nn_transformer_encoder_layer(impl, shape, norm_first):
    B, T, D, H, Fd = LAYER_SHAPES[shape]
    check_encoder(impl, encoder_module(D, H, Fd, norm_first), rand(B, T, D), H, norm_first, shape)


@pytest.mark.points(1)
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_encoder_layer_blocks_padded_keys(impl, norm_first):
    check_encoder(impl, encoder_module(8, 2, 12, norm_first), rand(3, 6, 8), 2, norm_first,
                  "B=3, T=6, D=8, H=2, with src_key_padding_mask", kpm=padding(3, 6))


@pytest.mark.points(2)
def test_encoder_layer_gradients_match_autograd_through_the_module(impl):
    m = encoder_module(6, 2, 8, norm_first=False)
    x, kpm, g = rand(2, 4, 6, grad=True), padding(2, 4), rand(2, 4, 6)
    params = params_of(m, grad=True)
    res = impl.call("encoder_layer", x, params, grad_outputs=g, num_heads=2, src_key_padding_mask=kpm, norm_first=False)
    leaves = params_of(m, grad=True)
    with no_fastpath():
        torch.func.functional_call(m, leaves, (x,), {"src_key_padding_mask": kpm}).backward(g)
    with layer_hint():
        assert_close(grad_of(res.args[0], "d loss / d x"), x.grad, "d loss / d x", dims="BTD")
        for name, t in res.args[1].items():
            assert_close(grad_of(t, f"d loss / d params[{name!r}]"), leaves[name].grad, f"d loss / d params[{name!r}]")


@pytest.mark.points(1)
def test_encoder_layer_keeps_float32(impl):
    for norm_first in (False, True):
        check_encoder(impl, encoder_module(8, 2, 16, norm_first, f32), rand(2, 5, 8, dtype=f32), 2, norm_first,
                      "float32", kpm=padding(2, 5))


# -- decoder_layer ---------------------------------------------------------------------------------

def decoder_module(D, H, Fd, norm_first, dtype=f64):
    return randomized(nn.TransformerDecoderLayer(D, H, Fd, dropout=0.1, batch_first=True,
                                                 norm_first=norm_first, dtype=dtype))


def decoder_forward(m, x, mem, tgt_mask=None, mkpm=None, norm_first=None, memory_norm=False, ff_res=True,
                    cross_kv_from_x=False):
    """nn.TransformerDecoderLayer's math from its sub-layers, with switches for the wrong variants."""
    nf = m.norm_first if norm_first is None else norm_first
    sa = lambda h: m.self_attn(h, h, h, attn_mask=tgt_mask, need_weights=False)[0]  # noqa: E731

    def ca(h):
        kv = h if cross_kv_from_x else (m.norm2(mem) if memory_norm else mem)
        return m.multihead_attn(h, kv, kv, key_padding_mask=mkpm, need_weights=False)[0]

    ff = lambda h: m.linear2(F.relu(m.linear1(h)))  # noqa: E731
    with no_fastpath(), torch.no_grad():
        if nf:
            x = x + sa(m.norm1(x))
            x = x + ca(m.norm2(x))
            return x + ff(m.norm3(x)) if ff_res else ff(m.norm3(x))
        x = m.norm1(x + sa(x))
        x = m.norm2(x + ca(x))
        return m.norm3(x + ff(x) if ff_res else ff(x))


def decoder_variants(m, x, mem, tgt_mask, mkpm, norm_first):
    run = lambda **kw: (lambda: decoder_forward(m, x, mem, tgt_mask, mkpm, **kw))  # noqa: E731
    out = {
        "post-norm and pre-norm swapped: norm_first=False is x = norm1(x + self_attn(x)), "
        "norm_first=True is x = x + self_attn(norm1(x))": run(norm_first=not norm_first),
        "no residual around the feed-forward": run(ff_res=False),
        "the cross-attention attended to x: its keys and values are the encoder's `memory`":
            run(cross_kv_from_x=True),
    }
    if norm_first:
        out["the memory was normalised too: in a pre-norm decoder only x goes through norm2, "
            "the memory enters the cross-attention as it is"] = run(memory_norm=True)
    if tgt_mask is not None:
        out["tgt_mask was ignored: it masks the decoder's self-attention"] = \
            lambda: decoder_forward(m, x, mem, None, mkpm)
        if tgt_mask.dtype == torch.bool:
            out["bool tgt_mask inverted: as in nn.MultiheadAttention, True means BLOCKED"] = \
                lambda: decoder_forward(m, x, mem, ~tgt_mask, mkpm)
    if mkpm is not None and tgt_mask is not None and tgt_mask.dtype == torch.bool:
        out["both bool masks inverted: as in nn.MultiheadAttention, True means BLOCKED"] = \
            lambda: decoder_forward(m, x, mem, ~tgt_mask, ~mkpm)
    if mkpm is not None:
        out["memory_key_padding_mask was ignored: the cross-attention must block padded memory positions"] = \
            lambda: decoder_forward(m, x, mem, tgt_mask, None)
        out["memory_key_padding_mask inverted: True marks PADDED memory positions"] = \
            lambda: decoder_forward(m, x, mem, tgt_mask, ~mkpm)
    return out


def check_decoder(impl, m, x, mem, H, norm_first, what, tgt_mask=None, mkpm=None):
    kw = {k: v for k, v in (("tgt_mask", tgt_mask), ("memory_key_padding_mask", mkpm)) if v is not None}
    with no_fastpath():
        want = m(x, mem, **kw)
    got = impl.decoder_layer(x, mem, params_of(m), num_heads=H, norm_first=norm_first, **kw)
    with layer_hint():
        assert_close(got, want, f"decoder_layer output ({'pre' if norm_first else 'post'}-norm, {what})",
                     dims="BLD", variants=decoder_variants(m, x, mem, tgt_mask, mkpm, norm_first))


DEC_SHAPES = {"B=2,L=4,S=6,D=8,H=2,F=16": (2, 4, 6, 8, 2, 16), "B=1,L=1,S=1,D=4,H=1,F=6": (1, 1, 1, 4, 1, 6),
              "B=2,L=5,S=3,D=6,H=3,F=10": (2, 5, 3, 6, 3, 10)}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
@pytest.mark.parametrize("shape", DEC_SHAPES)
def test_decoder_layer_matches_nn_transformer_decoder_layer(impl, shape, norm_first):
    B, L, S, D, H, Fd = DEC_SHAPES[shape]
    check_decoder(impl, decoder_module(D, H, Fd, norm_first), rand(B, L, D), rand(B, S, D), H, norm_first, shape)


@pytest.mark.points(1)
@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_decoder_layer_with_causal_tgt_mask_and_padded_memory(impl, norm_first):
    L, S = 5, 6
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(L, dtype=f64)
    check_decoder(impl, decoder_module(8, 2, 12, norm_first), rand(3, L, 8), rand(3, S, 8), 2, norm_first,
                  "B=3, L=5, S=6, float causal tgt_mask, memory_key_padding_mask",
                  tgt_mask=tgt_mask, mkpm=padding(3, S))


@pytest.mark.points(1)
def test_decoder_layer_bool_tgt_mask_true_means_blocked(impl):
    L = 4
    tgt_mask = torch.ones(L, L, dtype=torch.bool).triu(1)
    tgt_mask[2, 0] = True
    check_decoder(impl, decoder_module(8, 2, 12, False), rand(2, L, 8), rand(2, 5, 8), 2, False,
                  "bool tgt_mask, True = blocked", tgt_mask=tgt_mask, mkpm=padding(2, 5))


@pytest.mark.points(2)
def test_decoder_layer_gradients_reach_x_and_memory_like_autograd(impl):
    m = decoder_module(6, 2, 8, norm_first=True)
    x, mem, g = rand(2, 3, 6, grad=True), rand(2, 4, 6, grad=True), rand(2, 3, 6)
    tgt_mask, mkpm = nn.Transformer.generate_square_subsequent_mask(3, dtype=f64), padding(2, 4)
    res = impl.call("decoder_layer", x, mem, params_of(m), grad_outputs=g, num_heads=2, tgt_mask=tgt_mask,
                    memory_key_padding_mask=mkpm, norm_first=True)
    with no_fastpath():
        m(x, mem, tgt_mask=tgt_mask, memory_key_padding_mask=mkpm).backward(g)
    with layer_hint():
        assert_close(grad_of(res.args[0], "d loss / d x"), x.grad, "d loss / d x", dims="BLD")
        assert_close(grad_of(res.args[1], "d loss / d memory"), mem.grad, "d loss / d memory", dims="BSD")


@pytest.mark.points(1)
def test_decoder_layer_keeps_float32(impl):
    m = decoder_module(8, 2, 16, False, f32)
    check_decoder(impl, m, rand(2, 4, 8, dtype=f32), rand(2, 6, 8, dtype=f32), 2, False, "float32",
                  tgt_mask=nn.Transformer.generate_square_subsequent_mask(4), mkpm=padding(2, 6))
