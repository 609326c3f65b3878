"""Grader for `sdpa`: softmax, attention weights and scaled dot-product attention.

Expected values come from torch.softmax and F.scaled_dot_product_attention;
the wrong variants below are the mistakes learners make, used only to name
the likely cause of a mismatch.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from grader.compare import assert_close

f64 = torch.float64
NEG_INF = float("-inf")


def rand(*shape, dtype=f64, scale=1.0, grad=False):
    return (torch.randn(*shape, dtype=dtype) * scale).requires_grad_(grad)


def attend(q, k, v=None, *, mask=None, scale=None, dim=-1, post_mask=False, fill=NEG_INF, multiply=False):
    """A configurable attention for building wrong variants (never the expected value)."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None and not post_mask:
        if mask.dtype == torch.bool:
            s = s.masked_fill(~mask, fill)
        else:
            s = s * mask if multiply else s + mask
    dead = s.isneginf().all(dim, keepdim=True)
    w = torch.softmax(s.masked_fill(dead, 0.0), dim=dim).masked_fill(dead, 0.0)
    if post_mask:
        w = w * mask
    return w if v is None else w @ v


def expected_weights(q, k, **kw):
    """The weight matrix F.scaled_dot_product_attention uses: run it on an identity value."""
    S = k.shape[-2]
    eye = torch.eye(S, dtype=q.dtype).expand(*k.shape[:-2], S, S)
    return F.scaled_dot_product_attention(q, k, eye, **kw)


# -- softmax -----------------------------------------------------------------------

@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("shape,dim", [((4, 7), -1), ((2, 3, 5), -1), ((2, 3, 5), 1), ((6,), 0), ((1, 1), -1)],
                         ids=["(4,7),dim=-1", "(2,3,5),dim=-1", "(2,3,5),dim=1", "(6,),dim=0", "(1,1),dim=-1"])
def test_softmax_matches_torch(impl, shape, dim):
    x = rand(*shape, scale=3)
    wrong_dim = 0 if dim in (-1, len(shape) - 1) and len(shape) > 1 else -1
    assert_close(impl.softmax(x, dim=dim), torch.softmax(x, dim), "softmax(x)",
                 variants={"normalised over the wrong dim: reduce over `dim`, with keepdim=True":
                           lambda: torch.softmax(x, wrong_dim)})


@pytest.mark.public
@pytest.mark.points(3)
def test_softmax_is_stable_for_inputs_of_magnitude_1e4(impl):
    x = rand(3, 8, scale=1e4)
    assert_close(impl.softmax(x), torch.softmax(x, -1), "softmax(1e4 * x)",
                 variants={"exp overflowed: subtract the row max before exponentiating":
                           lambda: torch.full_like(x, float("nan"))})


@pytest.mark.points(1)
def test_softmax_of_an_all_minus_inf_row_is_nan_like_torch(impl):
    x = rand(3, 4)
    x[1] = NEG_INF
    assert_close(impl.softmax(x), torch.softmax(x, -1), "softmax with a row of -inf")


@pytest.mark.points(2)
def test_softmax_gradient_matches_autograd_through_torch_softmax(impl):
    x, g = rand(3, 5, grad=True), rand(3, 5)
    res = impl.call("softmax", x, dim=-1, grad_outputs=g)
    torch.softmax(x, -1).backward(g)
    assert_close(res.args[0].grad, x.grad, "d softmax / dx")


@pytest.mark.points(1)
def test_softmax_keeps_float32(impl):
    x = rand(4, 6, dtype=torch.float32)
    assert_close(impl.softmax(x), torch.softmax(x, -1), "softmax(float32 x)")


# -- attention ---------------------------------------------------------------------

SHAPES = {
    "B=2,L=5,S=5,E=8": ((2, 5, 8), (2, 5, 8), (2, 5, 8)),
    "B=2,L=3,S=7,E=4,Ev=6": ((2, 3, 4), (2, 7, 4), (2, 7, 6)),
    "B=1,L=1,S=1": ((1, 1, 3), (1, 1, 3), (1, 1, 2)),
    "B=2,heads=3,L=4,S=6": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5)),
    "no batch,L=6,S=2": ((6, 4), (2, 4), (2, 3)),
}


def scale_variants(q, k, v):
    E = q.shape[-1]
    return {
        "scaled by 1/E instead of 1/sqrt(E)": lambda: attend(q, k, v, scale=1 / E),
        "no scaling: divide the scores by sqrt(E)": lambda: attend(q, k, v, scale=1.0),
        "multiplied by sqrt(E) instead of dividing": lambda: attend(q, k, v, scale=math.sqrt(E)),
        "softmax over the query axis L instead of the key axis S": lambda: attend(q, k, v, dim=-2),
    }


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("name", SHAPES)
def test_attention_output_matches_torch(impl, name):
    q, k, v = (rand(*s) for s in SHAPES[name])
    assert_close(impl.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                 "attention output", variants=scale_variants(q, k, v))


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("name", SHAPES)
def test_attention_weights_match_torch_and_rows_sum_to_one(impl, name):
    q, k, _ = (rand(*s) for s in SHAPES[name])
    w = impl.attention_weights(q, k)
    assert_close(w, expected_weights(q, k), "attention weights",
                 variants={c: (lambda f=f: f()) for c, f in scale_variants(q, k, None).items()})
    assert_close(w.sum(-1), torch.ones(w.shape[:-1], dtype=f64), "attention weights summed over S")


@pytest.mark.points(1)
def test_attention_broadcasts_batch_dims_of_keys(impl):
    q, k, v = rand(2, 3, 4, 5), rand(1, 3, 6, 5), rand(1, 3, 6, 2)
    assert_close(impl.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                 "attention output with key batch dims (1, 3) against query batch dims (2, 3)")


@pytest.mark.points(2)
def test_an_explicit_scale_replaces_one_over_sqrt_e(impl):
    q, k, v = rand(2, 4, 8), rand(2, 5, 8), rand(2, 5, 3)
    assert_close(impl.scaled_dot_product_attention(q, k, v, scale=0.3),
                 F.scaled_dot_product_attention(q, k, v, scale=0.3), "attention output with scale=0.3",
                 variants={"the `scale` argument was ignored": lambda: attend(q, k, v)})


MASK_SHAPES = {"(L,S)": (4, 6), "(B,1,L,S)": (2, 1, 4, 6), "(B,H,L,S)": (2, 3, 4, 6)}


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("mask_shape", MASK_SHAPES)
def test_bool_mask_true_means_may_attend(impl, mask_shape):
    q, k, v = rand(2, 3, 4, 5), rand(2, 3, 6, 5), rand(2, 3, 6, 7)
    mask = torch.rand(MASK_SHAPES[mask_shape]) < 0.6
    mask[..., 0] = True  # every query keeps a key: fully masked rows are tested on their own
    assert_close(impl.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                 F.scaled_dot_product_attention(q, k, v, attn_mask=mask), f"attention output with a bool mask {mask_shape}",
                 variants={
                     "the mask is inverted: for this function True means MAY attend, so fill -inf where the mask is False "
                     "(nn.MultiheadAttention uses the opposite convention)": lambda: attend(q, k, v, mask=~mask | ~mask.any(-1, keepdim=True)),
                     "the mask was applied after the softmax (weights * mask), so the rows no longer sum to 1: "
                     "mask the scores with -inf before the softmax": lambda: attend(q, k, v, mask=mask, post_mask=True),
                     "masked scores were set to 0 instead of -inf, so masked keys still get weight":
                         lambda: attend(q, k, v, mask=mask, fill=0.0),
                 })


@pytest.mark.points(2)
@pytest.mark.parametrize("mask_shape", ["(L,S)", "(B,1,L,S)"])
def test_float_mask_is_added_to_the_scores(impl, mask_shape):
    q, k, v = rand(2, 3, 4, 5), rand(2, 3, 6, 5), rand(2, 3, 6, 7)
    mask = rand(*MASK_SHAPES[mask_shape], scale=2.0)
    mask[..., 1] = NEG_INF
    assert_close(impl.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                 F.scaled_dot_product_attention(q, k, v, attn_mask=mask), f"attention output with a float mask {mask_shape}",
                 variants={"the float mask was multiplied with the scores: a float mask is ADDED to them":
                           lambda: attend(q, k, v, mask=mask, multiply=True),
                           "the float mask was treated as a bool mask: only bool masks mean allowed/blocked":
                           lambda: attend(q, k, v, mask=mask != 0)})


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("L,S", [(5, 5), (3, 6), (6, 3)])
def test_is_causal_uses_the_top_left_lower_triangle(impl, L, S):
    q, k, v = rand(2, L, 4), rand(2, S, 4), rand(2, S, 3)
    ones = torch.ones(L, S, dtype=torch.bool)
    assert_close(impl.scaled_dot_product_attention(q, k, v, is_causal=True),
                 F.scaled_dot_product_attention(q, k, v, is_causal=True), f"causal attention output (L={L}, S={S})", dims="BLE",
                 variants={
                     "bottom-right aligned triangle (tril(diagonal=S-L)); PyTorch aligns it top-left: query i sees keys 0..i":
                         lambda: attend(q, k, v, mask=ones.tril(S - L)),
                     "the diagonal is masked too (tril(-1)): query i may attend to key i":
                         lambda: attend(q, k, v, mask=ones.tril(-1)),
                     "upper triangle instead of lower: query i must see keys 0..i, not i..S-1":
                         lambda: attend(q, k, v, mask=ones.triu()),
                 })


@pytest.mark.points(3)
def test_fully_masked_rows_give_zeros_not_nan(impl):
    q, k, v = rand(2, 4, 5), rand(2, 6, 5), rand(2, 6, 3)
    mask = torch.rand(2, 4, 6) < 0.7
    mask[:, :, 0] = True
    mask[0, 2] = False
    mask[1, 0] = False
    assert_close(impl.attention_weights(q, k, attn_mask=mask), expected_weights(q, k, attn_mask=mask),
                 "attention weights with fully masked rows [b=0, l=2] and [b=1, l=0]")
    assert_close(impl.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                 F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                 "attention output with fully masked rows [b=0, l=2] and [b=1, l=0]")


@pytest.mark.points(2)
def test_attention_is_stable_for_scores_of_magnitude_1e4(impl):
    q, k, v = rand(2, 4, 8, scale=100.0), rand(2, 5, 8, scale=100.0), rand(2, 5, 3)
    assert_close(impl.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                 "attention output for scores around 1e4",
                 variants={"exp overflowed: subtract the row max in softmax": lambda: torch.full((2, 4, 3), float("nan"), dtype=f64)})


@pytest.mark.points(3)
def test_gradients_match_autograd_through_torch(impl):
    q, k, v = rand(2, 3, 4, grad=True), rand(2, 5, 4, grad=True), rand(2, 5, 6, grad=True)
    mask = torch.rand(3, 5) < 0.7
    mask[:, 0] = True
    g = rand(2, 3, 6)
    res = impl.call("scaled_dot_product_attention", q, k, v, attn_mask=mask, grad_outputs=g)
    F.scaled_dot_product_attention(q, k, v, attn_mask=mask).backward(g)
    for name, got, want in zip("qkv", res.args, (q, k, v)):
        assert_close(got.grad, want.grad, f"d output / d {name}")


@pytest.mark.points(1)
def test_float32_inputs_give_float32_outputs(impl):
    q, k, v = (rand(2, 5, 8, dtype=torch.float32) for _ in range(3))
    assert_close(impl.scaled_dot_product_attention(q, k, v), F.scaled_dot_product_attention(q, k, v),
                 "attention output in float32")
