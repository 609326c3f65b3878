"""Grader for `masking`: padding, masks, masked mean and loss, last real step, sorting by length.

Expected values come from torch.nn.utils.rnn.pad_sequence, F.cross_entropy
with ignore_index, and plain loops and indexing here in the grader; the wrong
variants below are the mistakes learners make, used only to name the likely
cause of a mismatch.

Shapes: B batch, T time (T_max), H hidden, C classes.
"""

import itertools
from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence as torch_pad_sequence

from grader.compare import assert_close
from grader.sandbox import SubmissionError

f64, f32 = torch.float64, torch.float32
IGNORE = -100


def rand(*shape, dtype=f64, scale=1.0, grad=False):
    return (torch.randn(*shape, dtype=dtype) * scale).requires_grad_(grad)


def long(values):
    return torch.tensor(values, dtype=torch.long)


def dtype_name(dtype):
    return str(dtype).removeprefix("torch.")


def check_dtype(got, want, name, fix):
    """A dtype message that says why this dtype (assert_close assumes 'the inputs' dtype')."""
    if isinstance(got, torch.Tensor) and got.dtype != want:
        raise AssertionError(f"{name}: expected dtype {dtype_name(want)}, got {dtype_name(got.dtype)}; {fix}")


def unpack(value, names, fn):
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        raise AssertionError(f"`{fn}` must return a tuple ({', '.join(names)}), got {type(value).__name__}"
                             + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    return value


def grad_of(t, name, why="the output is cut off from it (built with torch.tensor(...), .tolist(), .item() or .detach())"):
    if t.grad is None:
        raise AssertionError(f"{name}: no gradient reached this input; {why}")
    return t.grad


def grads(fn, inputs, g):
    """d<fn(*inputs), g> / d inputs by autograd, on fresh copies (for expected values and variants)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    found = torch.autograd.grad(fn(*leaves), leaves, g, allow_unused=True)
    return [torch.zeros_like(leaf) if d is None else d for leaf, d in zip(leaves, found)]


@contextmanager
def hint_on_error(hint):
    """Add a hint to a crash of the submission (not to timeouts, forbidden calls or stubs)."""
    try:
        yield
    except SubmissionError as exc:
        if type(exc) is not SubmissionError or "not implemented yet" in str(exc):
            raise
        raise SubmissionError(f"{exc}; {hint}") from None


def mask_of(lengths, T):
    """mask[b, t] = t < lengths[b], by loops."""
    return torch.tensor([[t < n for t in range(T)] for n in lengths], dtype=torch.bool).reshape(len(lengths), T)


# -- pad_sequence --------------------------------------------------------------

LENGTHS_INT64 = ("build it with torch.tensor([...], dtype=torch.long, device=...): lengths index steps "
                 "and feed pack_padded_sequence, which want int64")


def pad_variants(seqs, value):
    return {
        "padded on the left: each sequence must start at step 0, with the padding after it":
            lambda: torch_pad_sequence(seqs, batch_first=True, padding_value=value, padding_side="left"),
        "time-major (T_max, B, *): this function returns batch-first (B, T_max, *)":
            lambda: torch_pad_sequence(seqs, padding_value=value),
        "`padding_value` was ignored: fill the padding with padding_value, not zeros":
            lambda: torch_pad_sequence(seqs, batch_first=True) if value != 0 else None,
    }


def check_padding(impl, seqs, value=0.0, what=""):
    padded, lengths = unpack(impl.pad_sequence(seqs, padding_value=value), ("padded", "lengths"), "pad_sequence")
    want = torch_pad_sequence(seqs, batch_first=True, padding_value=value)
    dims = {3: "BTH", 2: "BT"}.get(want.dim())
    assert_close(padded, want, f"padded{what}", dims=dims, variants=pad_variants(seqs, value))
    check_dtype(lengths, torch.long, f"lengths{what}", LENGTHS_INT64)
    T = want.shape[1]
    assert_close(lengths, long([len(s) for s in seqs]), f"lengths{what}", dims="B",
                 variants={"every length is T_max: count each sequence's own steps, s.shape[0]":
                           torch.full((len(seqs),), T)})


PAD_CASES = {
    "ascending lengths 2,3,5, no feature dim": ([2, 3, 5], (), f64),
    "descending lengths 5,3,1, H=4": ([5, 3, 1], (4,), f64),
    "shuffled lengths 3,6,1,4, trailing dims (3, 2), float32": ([3, 6, 1, 4], (3, 2), f32),
    "all lengths equal (no padding), H=2": ([4, 4, 4], (2,), f64),
    "B=1, length 3, H=2": ([3], (2,), f64),
    "T_max=1: every length is 1, H=3": ([1, 1], (3,), f64),
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", PAD_CASES)
def test_pad_sequence_matches_torch_batch_first(impl, case):
    lengths, rest, dtype = PAD_CASES[case]
    check_padding(impl, [rand(n, *rest, dtype=dtype) for n in lengths], what=f" ({case})")


@pytest.mark.points(1)
def test_pad_sequence_fills_the_padding_with_padding_value(impl):
    check_padding(impl, [rand(n, 3) for n in (2, 5, 3)], value=-1.5, what=" with padding_value=-1.5")


@pytest.mark.points(1)
def test_pad_sequence_keeps_integer_token_ids_as_int64(impl):
    seqs = [torch.randint(1, 50, (n,)) for n in (4, 1, 6, 3)]
    check_padding(impl, seqs, value=0, what=" of int64 token ids")


@pytest.mark.points(1)
def test_pad_sequence_passes_each_gradient_back_to_its_sequence(impl):
    seqs = [rand(n, 2, grad=True) for n in (3, 5, 2)]
    g = rand(3, 5, 2)
    res = impl.call("pad_sequence", seqs, grad_outputs=(g, None))
    for i, (got, s) in enumerate(zip(res.args[0], seqs)):
        assert_close(grad_of(got, f"sequence {i}"), g[i, : len(s)], f"d padded / d sequence {i}", dims="TH",
                     variants={"padded on the left: each sequence must start at step 0, with the padding after it":
                               g[i, g.shape[1] - len(s):]})


# -- lengths_to_mask -----------------------------------------------------------

def mask_variants(lengths, T):
    steps, n = torch.arange(T)[None, :], lengths[:, None]
    return {
        "compared with <= instead of <: step `length` is already padding (steps count from 0)": lambda: steps <= n,
        "the mask is inverted: True must mark the real steps, False the padding": lambda: steps >= n,
        "the real steps were put at the end (left padding): they are the first `length` steps": lambda: steps >= T - n,
        "`max_len` was ignored: when given, the mask has max_len columns":
            lambda: mask_of(lengths.tolist(), int(lengths.max())),
    }


def check_mask(got, lengths, T, what):
    check_dtype(got, torch.bool, f"mask{what}", "compare positions with lengths (arange(T)[None, :] < lengths[:, None]) "
                "to get a bool tensor directly")
    assert_close(got, mask_of(lengths.tolist(), T), f"mask{what}", dims="BT", variants=mask_variants(lengths, T))


MASK_CASES = {
    "shuffled lengths 3,5,1,4": [3, 5, 1, 4],
    "all lengths equal 2,2,2": [2, 2, 2],
    "B=1, length 1": [1],
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", MASK_CASES)
def test_lengths_to_mask_is_true_exactly_at_steps_before_each_length(impl, case):
    lengths = long(MASK_CASES[case])
    check_mask(impl.lengths_to_mask(lengths), lengths, int(lengths.max()), f" ({case})")


@pytest.mark.points(1)
def test_lengths_to_mask_with_max_len_adds_padded_steps(impl):
    lengths = long([2, 4, 1])
    check_mask(impl.lengths_to_mask(lengths, max_len=7), lengths, 7, " with max_len=7 for lengths 2,4,1")


# -- masked_mean ---------------------------------------------------------------

def brute_masked_mean(x, mask, dim):
    """Mean over the True positions of each slice along dim, one slice at a time; 0 for an empty one."""
    xb, mb = torch.broadcast_tensors(x, mask)
    xm, mm = xb.movedim(dim, -1), mb.movedim(dim, -1)
    out = [xm[i][mm[i]].sum() / max(int(mm[i].sum()), 1) for i in itertools.product(*map(range, xm.shape[:-1]))]
    return torch.stack(out).reshape(xm.shape[:-1])


def mean_variants(x, mask, dim):
    zeroed = torch.where(mask, x, 0.0)
    count = mask.expand(torch.broadcast_shapes(x.shape, mask.shape)).sum(dim)
    return {
        "divided by the full size of `dim` instead of the number of real positions: divide by mask.sum(dim)":
            lambda: zeroed.sum(dim) / x.shape[dim],
        "the padding was averaged in: a plain x.mean(dim) ignores the mask": lambda: x.mean(dim),
        "the real positions were zeroed instead of the padding (masked_fill fills where the mask is True: use ~mask)":
            lambda: torch.where(~mask, x, 0.0).sum(dim) / count.clamp_min(1),
        "the mask is inverted: True marks the real positions": lambda: brute_masked_mean(x, ~mask, dim),
        "the count was taken from the mask before broadcasting: a mask of size 1 along `dim` stands for every "
        "position of it, so expand the mask to x's shape before summing it":
            lambda: zeroed.sum(dim) / mask.sum(dim).clamp_min(1),
        "divided by a count of 0: clamp the count to at least 1 so an all-padded slice gives 0, not 0/0 = nan":
            lambda: zeroed.sum(dim) / count,
    }


def elementwise_mask(*shape):
    mask = torch.rand(*shape) < 0.6
    mask[:, 0] = True  # every (b, h) keeps a real step: empty slices are tested on their own
    return mask


# name -> () -> (x, mask, dim, output dims); the lengths include 1 and T.
MEAN_CASES = {
    "x (B,T,H), mask (B,T,1), dim=1": lambda: (rand(3, 5, 4), mask_of([3, 5, 1], 5)[..., None], 1, "BH"),
    "x (B,T), mask (B,T), dim=-1": lambda: (rand(4, 6), mask_of([2, 6, 4, 1], 6), -1, "B"),
    "x (B,T,H), elementwise mask (B,T,H), dim=1": lambda: (rand(3, 5, 4), elementwise_mask(3, 5, 4), 1, "BH"),
    "float32 time-major x (T,B,H), mask (T,B,1), dim=0":
        lambda: (rand(5, 3, 2, dtype=f32), mask_of([4, 1, 5], 5).T[..., None], 0, "BH"),
    "x (B,T,H), mask (B,T,1), dim=2: the mask broadcasts along the averaged dim":
        lambda: (rand(3, 4, 5), mask_of([2, 4, 1], 4)[..., None], 2, "BT"),
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", MEAN_CASES)
def test_masked_mean_averages_over_the_real_positions_only(impl, case):
    x, mask, dim, dims = MEAN_CASES[case]()
    assert_close(impl.masked_mean(x, mask, dim=dim), brute_masked_mean(x, mask, dim), f"masked_mean ({case})",
                 dims=dims, variants=mean_variants(x, mask, dim))


@pytest.mark.points(2)
def test_masked_mean_of_an_all_padded_slice_is_exactly_zero_and_so_is_its_gradient(impl):
    x, g = rand(3, 4, 2, grad=True), rand(3, 2)
    mask = mask_of([2, 0, 4], 4)[..., None]
    what = "for lengths 2,0,4 (sequence 1 is all padding)"
    res = impl.call("masked_mean", x, mask, dim=1, grad_outputs=g)
    assert_close(res.value, brute_masked_mean(x, mask, 1), f"masked_mean {what}", dims="BH",
                 variants=mean_variants(x, mask, 1))
    assert_close(res.value[1], torch.zeros(2, dtype=f64), f"masked_mean of the empty sequence {what}", dims="H",
                 rtol=0.0, atol=0.0)
    want = grads(lambda x: brute_masked_mean(x, mask, 1), [x], g)[0]
    assert_close(grad_of(res.args[0], "x"), want, f"d masked_mean / d x {what}", dims="BTH", variants={
        "the value was made finite after dividing by 0 (nan_to_num or torch.where), but the gradient of 0/0 is "
        "still nan: clamp the count to at least 1 before dividing": lambda: grads(
            lambda x: torch.nan_to_num((x * mask).sum(1) / mask.sum(1)), [x], g)[0],
    })


@pytest.mark.points(1)
def test_masked_mean_gradient_matches_autograd_and_padding_gets_exactly_zero(impl):
    x, g = rand(4, 5, 3, grad=True), rand(4, 3)
    mask = mask_of([3, 5, 1, 2], 5)[..., None]
    res = impl.call("masked_mean", x, mask, dim=1, grad_outputs=g)
    got = grad_of(res.args[0], "x")
    # The gradient each catalogued mistake gives, by autograd through that mistake.
    variants = {cause: (lambda cause=cause: grads(lambda x: mean_variants(x, mask, 1)[cause](), [x], g)[0])
                for cause in mean_variants(x.detach(), mask, 1)}
    assert_close(got, grads(lambda x: brute_masked_mean(x, mask, 1), [x], g)[0], "d masked_mean / d x",
                 dims="BTH", variants=variants)
    assert_close(got[~mask.expand_as(got)], torch.zeros(int((~mask).sum()) * 3, dtype=f64),
                 "d masked_mean / d x at the padded steps", rtol=0.0, atol=0.0)


# -- masked_cross_entropy ------------------------------------------------------

def torch_loss(logits, targets, mask):
    C = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, C), targets.masked_fill(~mask, IGNORE).reshape(-1), ignore_index=IGNORE)


def token_losses(logits, targets, mask):
    """Per-token cross entropy (B, T), pads included, with any out-of-range pad target pointed at class 0."""
    B, T, C = logits.shape
    safe = targets.masked_fill(~mask, 0)
    return F.cross_entropy(logits.reshape(-1, C), safe.reshape(-1), reduction="none").reshape(B, T)


def loss_variants(logits, targets, mask):
    tok = lambda: token_losses(logits, targets, mask)  # noqa: E731
    real = lambda: (tok() * mask).sum()  # noqa: E731
    picked = lambda: logits.gather(-1, targets.masked_fill(~mask, 0)[..., None])[..., 0]  # noqa: E731
    naive = lambda: logits.exp().sum(-1).log() - picked()  # noqa: E731
    return {
        "averaged over all B*T positions, padding included: divide by the number of real tokens, mask.sum()":
            lambda: real() / mask.numel(),
        "the padding was not masked: the loss averages every position": lambda: tok().mean(),
        "the padded tokens' losses were summed in (only the count is masked): zero them before summing":
            lambda: tok().sum() / mask.sum(),
        "averaged each sequence, then the sequences: every real token must weigh the same, so divide the "
        "total over the batch by the number of real tokens": lambda: ((tok() * mask).sum(1) / mask.sum(1)).mean(),
        "summed, not averaged: divide by the number of real tokens": real,
        "the mask is inverted: True marks the real tokens": lambda: (tok() * ~mask).sum() / (~mask).sum(),
        "exp overflowed: use logsumexp (subtract the max before exponentiating)":
            lambda: torch.where(mask, naive(), 0.0).sum() / mask.sum(),
        "exp overflowed to inf, and inf * 0 is nan at the padding: use logsumexp (subtract the max before "
        "exponentiating)": lambda: (naive() * mask).sum() / mask.sum(),
    }


def ce_inputs(B, T, C, lengths, dtype=f64, scale=1.0, grad=False):
    mask = mask_of(lengths, T)
    # Pad targets are valid class ids here (a pad token id), so an unmasked loss differs but does not crash.
    return rand(B, T, C, dtype=dtype, scale=scale, grad=grad), torch.randint(0, C, (B, T)), mask


CE_CASES = {
    "B=3, T=5, C=7, lengths 3,5,1": (3, 5, 7, [3, 5, 1], f64),
    "B=4, T=6, C=3, lengths 6,2,4,1": (4, 6, 3, [6, 2, 4, 1], f64),
    "B=1, T=1, C=4": (1, 1, 4, [1], f64),
    "no padding: B=2, T=4, C=5, lengths 4,4": (2, 4, 5, [4, 4], f64),
    "float32, B=3, T=4, C=6, lengths 2,4,3": (3, 4, 6, [2, 4, 3], f32),
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", CE_CASES)
def test_masked_cross_entropy_matches_torch_with_pads_set_to_ignore_index(impl, case):
    B, T, C, lengths, dtype = CE_CASES[case]
    logits, targets, mask = ce_inputs(B, T, C, lengths, dtype)
    assert_close(impl.masked_cross_entropy(logits, targets, mask), torch_loss(logits, targets, mask),
                 f"loss ({case})", variants=loss_variants(logits, targets, mask))


@pytest.mark.public
@pytest.mark.points(1)
def test_masked_cross_entropy_is_stable_for_logits_of_magnitude_1e4(impl):
    logits, targets, mask = ce_inputs(3, 5, 6, [4, 5, 2], scale=1e4)
    assert_close(impl.masked_cross_entropy(logits, targets, mask), torch_loss(logits, targets, mask),
                 "loss for logits around 1e4", variants=loss_variants(logits, targets, mask))


@pytest.mark.points(1)
def test_masked_cross_entropy_gradient_matches_autograd_and_padding_gets_exactly_zero(impl):
    logits, targets, mask = ce_inputs(3, 5, 4, [2, 5, 3], grad=True)
    g = torch.tensor(1.7, dtype=f64)
    res = impl.call("masked_cross_entropy", logits, targets, mask, grad_outputs=g)
    got = grad_of(res.args[0], "logits")
    variants = {cause: (lambda cause=cause: grads(lambda l: loss_variants(l, targets, mask)[cause](), [logits], g)[0])
                for cause in loss_variants(logits.detach(), targets, mask)}
    assert_close(got, grads(lambda l: torch_loss(l, targets, mask), [logits], g)[0], "d loss / d logits",
                 dims="BTC", variants=variants)
    assert_close(got[~mask], torch.zeros(int((~mask).sum()), 4, dtype=f64),
                 "d loss / d logits at the padded steps", rtol=0.0, atol=0.0)


@pytest.mark.points(1)
def test_masked_cross_entropy_ignores_any_target_value_at_the_padding(impl):
    logits, targets, mask = ce_inputs(3, 4, 5, [2, 4, 1])
    targets = targets.masked_fill(~mask, IGNORE)
    with hint_on_error(f"the targets at padded steps hold {IGNORE} here, as pad_sequence(targets, "
                       f"padding_value={IGNORE}) makes them: point them at a valid class (targets.masked_fill(~mask, 0)) "
                       "before gather or indexing"):
        got = impl.masked_cross_entropy(logits, targets, mask)
    assert_close(got, torch_loss(logits, targets, mask), f"loss with target {IGNORE} at the padded steps",
                 variants=loss_variants(logits, targets, mask))


@pytest.mark.points(1)
def test_masked_cross_entropy_with_no_real_token_is_zero_not_nan(impl):
    logits, targets, mask = ce_inputs(2, 3, 4, [0, 0], grad=True)
    what = "with no real token (F.cross_entropy gives nan here; this function returns 0, as its docstring says)"
    res = impl.call("masked_cross_entropy", logits, targets, mask, grad_outputs=torch.tensor(1.0, dtype=f64))
    assert_close(res.value, torch.zeros((), dtype=f64), f"loss {what}", rtol=0.0, atol=0.0, variants={
        "divided by a count of 0: clamp the number of real tokens to at least 1 (0/0 is nan)":
            torch.tensor(float("nan"), dtype=f64)})
    got = grad_of(res.args[0], "logits", "the returned 0 does not depend on logits, so loss.backward() fails in a "
                  "training loop: return a 0 computed from logits (e.g. the masked sum divided by a count clamped to 1)")
    assert_close(got, torch.zeros(2, 3, 4, dtype=f64), f"d loss / d logits {what}",
                 dims="BTC", rtol=0.0, atol=0.0)


# -- last_valid ----------------------------------------------------------------

def last_variants(outputs, lengths):
    B, T = outputs.shape[:2]
    rows = torch.arange(B)
    return {
        "off by one: took step `length` instead of `length - 1` (steps count from 0)": lambda: outputs[rows, lengths],
        "took the last step T-1 of every row, which is padding for the shorter sequences": lambda: outputs[:, -1],
        "outputs[:, lengths - 1] pairs every row with every length: index rows and steps together, "
        "outputs[torch.arange(B), lengths - 1]": lambda: outputs[:, lengths - 1],
        "counted the steps from the end (left padding): the real steps are 0 .. length-1":
            lambda: outputs[rows, T - lengths],
        "took the first step, not the last real one": lambda: outputs[:, 0],
    }


def brute_last(outputs, lengths):
    return torch.stack([outputs[b, n - 1] for b, n in enumerate(lengths.tolist())])


LAST_CASES = {
    "lengths 3,5,1,4 with T=6, H=4": ((4, 6, 4), [3, 5, 1, 4], f64),
    "float32, lengths 2,5,5 with T=5 (a length equal to T), trailing dims (2, 3)": ((3, 5, 2, 3), [2, 5, 5], f32),
    "B=1, T=1, H=3": ((1, 1, 3), [1], f64),
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", LAST_CASES)
def test_last_valid_picks_step_length_minus_one_of_each_sequence(impl, case):
    shape, lengths, dtype = LAST_CASES[case]
    outputs, lengths = rand(*shape, dtype=dtype), long(lengths)
    assert_close(impl.last_valid(outputs, lengths), brute_last(outputs, lengths), f"last_valid ({case})",
                 dims="BH" if len(shape) == 3 else None, variants=last_variants(outputs, lengths))


@pytest.mark.points(1)
def test_last_valid_gradient_reaches_only_the_picked_steps(impl):
    outputs, g, lengths = rand(3, 5, 2, grad=True), rand(3, 2), long([4, 1, 5])
    # The output first: a backward pass cannot even start from an output of the wrong shape.
    assert_close(impl.last_valid(outputs, lengths), brute_last(outputs, lengths), "last_valid for lengths 4,1,5",
                 dims="BH", variants=last_variants(outputs, lengths))
    res = impl.call("last_valid", outputs, lengths, grad_outputs=g)
    variants = {cause: (lambda cause=cause: grads(lambda o: last_variants(o, lengths)[cause](), [outputs], g)[0])
                for cause in last_variants(outputs, lengths)}
    assert_close(grad_of(res.args[0], "outputs"), grads(lambda o: brute_last(o, lengths), [outputs], g)[0],
                 "d last_valid / d outputs", dims="BTH", variants=variants)


# -- sort_by_length ------------------------------------------------------------

def stable_descending(lengths):
    """Python's sort is stable: equal lengths keep their order."""
    return long(sorted(range(len(lengths)), key=lambda i: -int(lengths[i])))


def order_variants(lengths):
    return {
        "sorted ascending: the longest sequence must come first (descending=True)":
            lambda: torch.sort(lengths, stable=True).indices,
        "sorted ascending and flipped: equal lengths come out in reverse order; "
        "use torch.sort(lengths, descending=True, stable=True)": lambda: torch.sort(lengths, stable=True).indices.flip(0),
        "an unstable sort moved equal lengths out of their original order: pass stable=True":
            lambda: torch.sort(lengths, descending=True).indices,
    }


INVERSE_IS_ORDER = ("the inverse permutation is order itself: it must satisfy inverse[order[i]] = i, "
                    "i.e. order.argsort() (or scatter arange(B) into the positions order)")


def sort_lengths_with_ties():
    return torch.randint(1, 4, (24,))


SORT_CASES = {
    "distinct lengths 3,7,1,5,2": lambda: long([3, 7, 1, 5, 2]),
    "ties 4,1,4,2,4,1": lambda: long([4, 1, 4, 2, 4, 1]),
    "24 lengths in 1..3 (many ties)": sort_lengths_with_ties,
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", SORT_CASES)
def test_sort_by_length_is_descending_and_stable(impl, case):
    lengths = SORT_CASES[case]()
    sorted_lengths, order, inverse = unpack(impl.sort_by_length(lengths), ("sorted_lengths", "order", "inverse"),
                                            "sort_by_length")
    want_order = stable_descending(lengths)
    assert_close(sorted_lengths, lengths[want_order], f"sorted_lengths ({case})", dims="B",
                 variants={"sorted ascending: the longest sequence must come first (descending=True)":
                           lengths.sort().values})
    check_dtype(order, torch.long, "order", "torch.sort returns int64 indices")
    assert_close(order, want_order, f"order ({case})", dims="B", variants=order_variants(lengths))
    check_dtype(inverse, torch.long, "inverse", "build it with the dtype of order")
    assert_close(inverse, want_order.argsort(), f"inverse ({case})", dims="B", variants={INVERSE_IS_ORDER: order})


@pytest.mark.points(1)
def test_x_order_sorts_a_batch_and_indexing_by_inverse_restores_it(impl):
    lengths = long([2, 5, 3, 5, 1, 3])
    x = rand(6, 5, 2)
    _, order, inverse = unpack(impl.sort_by_length(lengths), ("sorted_lengths", "order", "inverse"), "sort_by_length")
    assert_close(lengths[order], lengths[stable_descending(lengths)], "lengths[order]", dims="B",
                 variants={"sorted ascending: the longest sequence must come first (descending=True)":
                           lengths.sort().values})
    assert_close(x[order][inverse], x, "x[order][inverse] (should be x again)", dims="BTH",
                 variants={INVERSE_IS_ORDER: x[order][order]})
