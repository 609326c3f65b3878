"""Grader for `bahdanau`: additive scores, masked softmax, additive attention, Luong's scores.

PyTorch has no built-in additive attention, so the expected values come from
an independent formula written here with loops over (b, j):
score_bj = v . tanh(W_q q_b + W_k k_bj), torch.softmax over the real
positions of each row, context_b = sum_j weight_bj value_bj. Gradients are
autograd through that formula. The wrong variants below are the mistakes
learners make, used only to name the likely cause of a mismatch.

Shapes: B batch, S source length, Hq query dim, Hk key dim, A attention dim,
Dv value dim. Masks are True at REAL positions.
"""

from contextlib import contextmanager

import pytest
import torch

from grader.compare import assert_close
from grader.sandbox import SubmissionError

f64, f32 = torch.float64, torch.float32
NEG_INF = float("-inf")


def rand(*shape, dtype=f64, scale=1.0, grad=False):
    return (torch.randn(*shape, dtype=dtype) * scale).requires_grad_(grad)


def random_mask(B, S, p=0.6):
    """A (B, S) bool mask, True = real, with at least one real position per row."""
    mask = torch.rand(B, S) < p
    mask[torch.arange(B), torch.randint(S, (B,))] = True
    return mask


@contextmanager
def hint_on_shape_error(hint):
    """Add a hint to a crash that looks like mismatched matmul shapes."""
    try:
        yield
    except SubmissionError as exc:
        shapes = ("cannot be multiplied", "size mismatch", "must match the size", "Expected size", "einsum")
        if type(exc) is not SubmissionError or not any(s in str(exc) for s in shapes):
            raise
        raise SubmissionError(f"{exc}; {hint}") from None


WEIGHT_HINT = ("likely cause: the weights are swapped or not transposed: w_q (A, Hq) goes with the query "
               "and w_k (A, Hk) with the keys, applied nn.Linear style as x @ W.T")
LUONG_HINT = ("likely cause: W is (Hq, Hk), so the general score is q . (W k_j): apply it to the keys as "
              "keys @ W.T (or to the query as q @ W), not keys @ W")


def grad_of(t, name):
    if t.grad is None:
        raise AssertionError(f"{name}: no gradient reached this input; the output is cut off from it "
                             "(built with torch.tensor(...), .item(), .detach() or a fixed constant)")
    return t.grad


# -- the independent formula (expected values) ---------------------------------

def formula_scores(query, keys, w_q, w_k, v):
    """score[b, j] = v . tanh(W_q q_b + W_k k_bj), one (b, j) pair at a time."""
    B, S = keys.shape[:2]
    rows = [torch.stack([torch.dot(v, torch.tanh(w_q @ query[b] + w_k @ keys[b, j])) for j in range(S)])
            for b in range(B)]
    return torch.stack(rows)


def formula_softmax(scores, mask):
    """torch.softmax over each row's real positions; zeros elsewhere and in rows with none."""
    rows = []
    for b in range(scores.shape[0]):
        idx = mask[b].nonzero().flatten()
        row = torch.zeros_like(scores[b])
        if len(idx):
            row = row.index_put((idx,), torch.softmax(scores[b, idx], dim=0))
        rows.append(row)
    return torch.stack(rows)


def formula_attention(query, keys, values, mask, w_q, w_k, v):
    weights = formula_softmax(formula_scores(query, keys, w_q, w_k, v), mask)
    B, S = weights.shape
    context = torch.stack([sum(weights[b, j] * values[b, j] for j in range(S)) for b in range(B)])
    return context, weights


def formula_luong(query, keys, w=None):
    B, S = keys.shape[:2]
    return torch.stack([torch.stack([torch.dot(query[b], keys[b, j] if w is None else w @ keys[b, j])
                                     for j in range(S)]) for b in range(B)])


# -- wrong variants (never the expected value) ---------------------------------

def wrong_scores(query, keys, w_q, w_k, v, *, swap=False, no_tanh=False, v_first=False):
    if swap:
        w_q, w_k = w_k, w_q
    pre = (query @ w_q.T)[:, None, :] + keys @ w_k.T  # (B, S, A)
    if v_first:
        return torch.tanh(pre @ v)
    return (pre if no_tanh else torch.tanh(pre)) @ v


UNIFORM_CAUSE = ("the all-pad row got the uniform weights 1/S (a finite fill such as -1e9, or the row was not "
                 "zeroed after the softmax): a row with no real position must give zeros")


def wrong_softmax(scores, mask, *, fill=NEG_INF, post_mask=False, invert=False, dim=-1, no_shift=False,
                  zero_empty=True):
    if invert:
        mask = ~mask
    s = scores if post_mask else scores.masked_fill(~mask, fill)
    empty = ~mask.any(-1, keepdim=True)
    s = s.masked_fill(empty, 0.0)
    if no_shift:
        e = s.exp()
        w = e / e.sum(dim, keepdim=True)
    else:
        w = torch.softmax(s, dim=dim)
    if post_mask:
        w = w * mask
    return w.masked_fill(empty, 0.0) if zero_empty else w


def score_variants(query, keys, w_q, w_k, v):
    return {
        "tanh is missing: score_j = v . tanh(W_q q + W_k k_j)": lambda: wrong_scores(query, keys, w_q, w_k, v, no_tanh=True),
        "v was applied before the tanh: project the tanh's output, v . tanh(...), not tanh(v . (...))":
            lambda: wrong_scores(query, keys, w_q, w_k, v, v_first=True),
        "w_q and w_k are swapped: w_q (A, Hq) projects the query, w_k (A, Hk) the keys":
            lambda: wrong_scores(query, keys, w_q, w_k, v, swap=True),
    }


def softmax_variants(scores, mask):
    return {
        "masked scores were set to 0 instead of -inf before the softmax, so padded positions still get weight":
            lambda: wrong_softmax(scores, mask, fill=0.0),
        "the mask was applied after the softmax (weights * mask) without renormalising, so rows no longer "
        "sum to 1: fill the scores with -inf at pads before the softmax": lambda: wrong_softmax(scores, mask, post_mask=True),
        "the mask is inverted: here True marks a REAL position, so fill -inf where the mask is False "
        "(nn.MultiheadAttention's key_padding_mask uses the opposite convention)":
            lambda: wrong_softmax(scores, mask, invert=True),
        "softmax over the batch axis (dim 0): normalise each row over its S positions (dim=-1)":
            lambda: wrong_softmax(scores, mask, dim=0),
    }


def attention_variants(query, keys, values, mask, w_q, w_k, v):
    """Variants of (context, weights) for each mistake, as two dicts."""
    s = formula_scores(query, keys, w_q, w_k, v).detach()
    sv = score_variants(query, keys, w_q, w_k, v)
    weights = {**{c: (lambda f=f: formula_softmax(f(), mask)) for c, f in sv.items()},
               **softmax_variants(s, mask)}
    context = {c: (lambda f=f: (f()[:, None, :] @ values).squeeze(1)) for c, f in weights.items()}
    context["the context was built from the keys: it is the weighted sum of the VALUES"] = \
        lambda: (formula_softmax(s, mask)[:, None, :] @ keys).squeeze(1)
    return context, weights


# -- shapes ----------------------------------------------------------------------

# name: (B, S, Hq, Hk, A, Dv)
SHAPES = {
    "B=2,S=5,Hq=4,Hk=6,A=3,Dv=7": (2, 5, 4, 6, 3, 7),
    "B=1,S=1,Hq=3,Hk=2,A=4,Dv=2": (1, 1, 3, 2, 4, 2),
    "B=3,S=4,Hq=Hk=5,A=3,Dv=5": (3, 4, 5, 5, 3, 5),
    "B=2,S=3,Hq=Hk=A=Dv=1": (2, 3, 1, 1, 1, 1),
    "B=1,S=6,Hq=2,Hk=3,A=8,Dv=4": (1, 6, 2, 3, 8, 4),
}


def make(name, dtype=f64, grad=False):
    B, S, Hq, Hk, A, Dv = SHAPES[name]
    query, keys, values = rand(B, Hq, dtype=dtype, grad=grad), rand(B, S, Hk, dtype=dtype, grad=grad), \
        rand(B, S, Dv, dtype=dtype, grad=grad)
    w_q, w_k, v = rand(A, Hq, dtype=dtype, grad=grad), rand(A, Hk, dtype=dtype, grad=grad), \
        rand(A, dtype=dtype, grad=grad)
    return query, keys, values, random_mask(B, S), w_q, w_k, v


# -- additive_scores ---------------------------------------------------------------

@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("name", SHAPES)
def test_additive_scores_match_v_dot_tanh_of_the_projections(impl, name):
    query, keys, _, _, w_q, w_k, v = make(name)
    with hint_on_shape_error(WEIGHT_HINT):
        got = impl.additive_scores(query, keys, w_q, w_k, v)
    assert_close(got, formula_scores(query, keys, w_q, w_k, v), f"additive_scores ({name})", dims="BS",
                 variants=score_variants(query, keys, w_q, w_k, v))


@pytest.mark.points(1)
def test_additive_scores_keep_float32(impl):
    query, keys, _, _, w_q, w_k, v = make("B=2,S=5,Hq=4,Hk=6,A=3,Dv=7", dtype=f32)
    with hint_on_shape_error(WEIGHT_HINT):
        got = impl.additive_scores(query, keys, w_q, w_k, v)
    assert_close(got, formula_scores(query, keys, w_q, w_k, v), "additive_scores in float32", dims="BS")


# -- masked_softmax ----------------------------------------------------------------

MASKS = {"B=3,S=6,random pads": (3, 6), "B=1,S=1": (1, 1), "B=4,S=5,random pads": (4, 5)}


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("name", MASKS)
def test_masked_softmax_is_a_softmax_over_the_real_positions(impl, name):
    B, S = MASKS[name]
    scores, mask = rand(B, S, scale=2.0), random_mask(B, S)
    assert_close(impl.masked_softmax(scores, mask), formula_softmax(scores, mask), f"masked_softmax ({name})",
                 dims="BS", variants=softmax_variants(scores, mask))


@pytest.mark.points(2)
def test_padded_positions_get_exactly_zero_and_real_ones_sum_to_one(impl):
    scores, mask = rand(4, 7, scale=3.0), random_mask(4, 7, p=0.5)
    scores[~mask] = 50.0  # large pad scores: any leak through the mask shows
    w = impl.masked_softmax(scores, mask)
    assert_close(w, formula_softmax(scores, mask), "masked_softmax with large scores at pads", dims="BS",
                 variants=softmax_variants(scores, mask))
    assert_close(w[~mask], torch.zeros(int((~mask).sum()), dtype=f64), "weights at padded positions (must be exactly 0)",
                 rtol=0.0, atol=0.0)
    assert_close((w * mask).sum(-1), torch.ones(4, dtype=f64), "weights summed over the real positions of each row",
                 dims="B")


@pytest.mark.points(3)
def test_a_row_with_no_real_position_gives_zeros_not_nan_in_value_and_gradient(impl):
    scores, mask, g = rand(3, 5, grad=True), random_mask(3, 5), rand(3, 5)
    mask[1] = False
    res = impl.call("masked_softmax", scores, mask, grad_outputs=g)
    want = formula_softmax(scores, mask)
    want.backward(g)
    assert_close(res.value, want, "masked_softmax with an all-pad row [b=1]", dims="BS",
                 variants={UNIFORM_CAUSE: lambda: wrong_softmax(scores, mask, zero_empty=False)})
    assert_close(grad_of(res.args[0], "d weights / d scores"), scores.grad,
                 "d weights / d scores with an all-pad row [b=1]", dims="BS")


STABLE = {"1e4 * randn": (1e4, 0.0), "1e4 + randn": (1.0, 1e4), "-1e4 + randn": (1.0, -1e4)}


def naive(scores, mask):
    return lambda: wrong_softmax(scores, mask, no_shift=True)


@pytest.mark.points(1)
@pytest.mark.parametrize("name", STABLE)
def test_masked_softmax_is_stable_for_scores_of_magnitude_1e4(impl, name):
    scale, shift = STABLE[name]
    scores, mask = rand(3, 6, scale=scale) + shift, random_mask(3, 6)
    assert_close(impl.masked_softmax(scores, mask), formula_softmax(scores, mask), f"masked_softmax of {name} scores",
                 dims="BS", variants={"exp overflowed or underflowed: subtract each row's max (over the real "
                                      "positions) before exponentiating": naive(scores, mask)})


@pytest.mark.points(2)
def test_masked_softmax_gradient_matches_autograd(impl):
    scores, mask, g = rand(4, 6, grad=True), random_mask(4, 6), rand(4, 6)
    res = impl.call("masked_softmax", scores, mask, grad_outputs=g)
    formula_softmax(scores, mask).backward(g)
    assert_close(grad_of(res.args[0], "d weights / d scores"), scores.grad, "d weights / d scores", dims="BS")


@pytest.mark.points(1)
def test_masked_softmax_keeps_float32_and_stays_stable(impl):
    scores, mask = rand(3, 6, dtype=f32) + 1e4, random_mask(3, 6)
    assert_close(impl.masked_softmax(scores, mask), formula_softmax(scores.double(), mask).float(),
                 "masked_softmax of float32 scores around 1e4", dims="BS",
                 variants={"exp overflowed: subtract each row's max before exponentiating": naive(scores, mask)})


# -- bahdanau_attention --------------------------------------------------------------

def call_attention(impl, args, **kw):
    with hint_on_shape_error(WEIGHT_HINT):
        res = impl.call("bahdanau_attention", *args, **kw)
    out = res.value
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise AssertionError("`bahdanau_attention` must return a tuple (context, weights), got "
                             f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return res, out


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("name", SHAPES)
def test_context_and_weights_match_the_additive_attention_formula(impl, name):
    args = make(name)
    _, (context, weights) = call_attention(impl, args)
    want_c, want_w = formula_attention(*args)
    var_c, var_w = attention_variants(*args)
    assert_close(weights, want_w, f"attention weights ({name})", dims="BS", variants=var_w)
    assert_close(context, want_c, f"context ({name})", dims="BD", variants=var_c)


@pytest.mark.points(2)
def test_padded_keys_and_values_do_not_change_the_context(impl):
    query, keys, values, mask, w_q, w_k, v = make("B=2,S=5,Hq=4,Hk=6,A=3,Dv=7")
    mask[:, 0], mask[:, -1] = True, False
    noisy_k, noisy_v = keys.clone(), values.clone()
    noisy_k[~mask], noisy_v[~mask] = 10 * rand(int((~mask).sum()), 6), 1e3
    _, (c1, w1) = call_attention(impl, (query, keys, values, mask, w_q, w_k, v))
    _, (c2, w2) = call_attention(impl, (query, noisy_k, noisy_v, mask, w_q, w_k, v))
    assert_close(w2, w1, "attention weights after changing the padded keys", dims="BS")
    assert_close(c2, c1, "context after changing the padded keys and values", dims="BD")


@pytest.mark.points(3)
def test_a_row_with_no_real_position_gives_a_zero_context_and_finite_gradients(impl):
    args = make("B=3,S=4,Hq=Hk=5,A=3,Dv=5", grad=True)
    args[3][2] = False
    g_c, g_w = rand(3, 5), rand(3, 4)
    res, (context, weights) = call_attention(impl, args, grad_outputs=(g_c, g_w))
    want_c, want_w = formula_attention(*args)
    torch.autograd.backward((want_c, want_w), (g_c, g_w))
    s = formula_scores(*args[:2], *args[4:]).detach()
    assert_close(weights, want_w, "attention weights with an all-pad row [b=2]", dims="BS",
                 variants={UNIFORM_CAUSE: lambda: wrong_softmax(s, args[3], zero_empty=False)})
    assert_close(context, want_c, "context with an all-pad row [b=2]", dims="BD")
    for label, dims, got, want in zip(("query", "keys", "values"), ("BH", "BSH", "BSD"), res.args[:3], args[:3]):
        assert_close(grad_of(got, f"d / d {label}"), want.grad,
                     f"d (context, weights) / d {label} with an all-pad row [b=2]", dims=dims)


GRAD_SHAPES = ["B=2,S=5,Hq=4,Hk=6,A=3,Dv=7", "B=1,S=6,Hq=2,Hk=3,A=8,Dv=4"]


@pytest.mark.points(3)
@pytest.mark.parametrize("name", GRAD_SHAPES)
def test_gradients_reach_every_input_and_match_autograd_through_the_formula(impl, name):
    args = make(name, grad=True)
    B, S, _, _, _, Dv = SHAPES[name]
    g_c, g_w = rand(B, Dv), rand(B, S)
    res, _ = call_attention(impl, args, grad_outputs=(g_c, g_w))
    torch.autograd.backward(formula_attention(*args), (g_c, g_w))
    names = ("query", "keys", "values", None, "w_q", "w_k", "v")
    for label, got, want in zip(names, res.args, args):
        if label is not None:
            assert_close(grad_of(got, f"d / d {label}"), want.grad, f"d (context, weights) / d {label} ({name})")


@pytest.mark.points(2)
def test_float32_inputs_give_float32_context_and_weights(impl):
    args = make("B=2,S=5,Hq=4,Hk=6,A=3,Dv=7", dtype=f32)
    _, (context, weights) = call_attention(impl, args)
    want_c, want_w = formula_attention(*(a.double() if a.is_floating_point() else a for a in args))
    assert_close(weights, want_w.float(), "attention weights in float32", dims="BS")
    assert_close(context, want_c.float(), "context in float32", dims="BD")


# -- luong_scores ---------------------------------------------------------------------

# name: (B, S, Hq, Hk)
LUONG = {"B=2,S=5,H=4": (2, 5, 4, 4), "B=1,S=1,H=1": (1, 1, 1, 1), "B=3,S=4,Hq=3,Hk=6": (3, 4, 3, 6)}


def luong_variants(query, keys, w=None):
    out = {"scaled by 1/sqrt(H): Luong's scores are unscaled (the scaling is the Transformer's)":
           lambda: formula_luong(query, keys, w) / query.shape[-1] ** 0.5}
    if w is not None:
        out["W was applied transposed (k_j W instead of W k_j): with w (Hq, Hk) the score is q . (W k_j), "
            "i.e. keys @ W.T"] = lambda: formula_luong(query, keys, w.T)
    return out


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["B=2,S=5,H=4", "B=1,S=1,H=1"])
def test_luong_dot_scores_are_q_dot_k(impl, name):
    B, S, H, _ = LUONG[name]
    query, keys = rand(B, H), rand(B, S, H)
    assert_close(impl.luong_scores(query, keys), formula_luong(query, keys), f"luong_scores, dot ({name})",
                 dims="BS", variants=luong_variants(query, keys))


@pytest.mark.points(2)
@pytest.mark.parametrize("name", LUONG)
def test_luong_general_scores_are_q_dot_w_k(impl, name):
    B, S, Hq, Hk = LUONG[name]
    query, keys, w = rand(B, Hq), rand(B, S, Hk), rand(Hq, Hk)
    with hint_on_shape_error(LUONG_HINT):
        got = impl.luong_scores(query, keys, w)
    assert_close(got, formula_luong(query, keys, w), f"luong_scores, general with w (Hq, Hk) ({name})",
                 dims="BS", variants=luong_variants(query, keys, w))


@pytest.mark.points(2)
def test_luong_general_gradients_match_autograd(impl):
    query, keys, w, g = rand(2, 3, grad=True), rand(2, 4, 5, grad=True), rand(3, 5, grad=True), rand(2, 4)
    with hint_on_shape_error(LUONG_HINT):
        res = impl.call("luong_scores", query, keys, w, grad_outputs=g)
    formula_luong(query, keys, w).backward(g)
    for label, got, want in zip(("query", "keys", "w"), res.args, (query, keys, w)):
        assert_close(grad_of(got, f"d scores / d {label}"), want.grad, f"d luong_scores / d {label}")


@pytest.mark.points(1)
def test_luong_scores_keep_float32(impl):
    query, keys, w = rand(2, 3, dtype=f32), rand(2, 4, 5, dtype=f32), rand(3, 5, dtype=f32)
    with hint_on_shape_error(LUONG_HINT):
        got = impl.luong_scores(query, keys, w)
    assert_close(got, formula_luong(query.double(), keys.double(), w.double()).float(),
                 "luong_scores, general, in float32", dims="BS")
