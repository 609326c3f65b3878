"""Grader for `birnn`: reversing padded sequences, and a bidirectional LSTM over a padded batch.

Expected values come from nn.LSTM(bidirectional=True, batch_first=True) run on
pack_padded_sequence(x, lengths, enforce_sorted=False) and unpacked with
pad_packed_sequence(..., total_length=T), and from plain loops here in the
grader; the wrong variants below are the mistakes learners make, used only to
name the likely cause of a mismatch.

Shapes: B batch, T time (padded length), D input, H hidden.
"""

import pytest
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from grader.compare import assert_close, describe_mismatch

f64, f32 = torch.float64, torch.float32
WEIGHT_NAMES = ("w_ih", "w_hh", "b_ih", "b_hh")
MODULE_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def rand(*shape, dtype=f64, scale=1.0, grad=False):
    return (torch.randn(*shape, dtype=dtype) * scale).requires_grad_(grad)


def long(values):
    return torch.tensor(values, dtype=torch.long)


def weights(D, H, dtype=f64, grad=False):
    """(w_ih (4H, D), w_hh (4H, H), b_ih (4H,), b_hh (4H,)) in nn.LSTM layout."""
    return tuple(rand(*s, dtype=dtype, scale=0.6, grad=grad) for s in ((4 * H, D), (4 * H, H), (4 * H,), (4 * H,)))


def real_mask(lengths, T):
    """mask[b, t] = t < lengths[b], by loops."""
    return torch.tensor([[t < n for t in range(T)] for n in lengths.tolist()], dtype=torch.bool).reshape(-1, T)


def unpack(value, names, fn):
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        raise AssertionError(f"`{fn}` must return a tuple ({', '.join(names)}), got {type(value).__name__}"
                             + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    return value


def check_shape(got, want, name, causes=()):
    """Shape first, so a wrong layout is named before any value is compared."""
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{name}: expected a tensor of shape {tuple(want)}, got {type(got).__name__}")
    if tuple(got.shape) != tuple(want):
        cause = next((c for shape, c in causes if tuple(shape) == tuple(got.shape)), None)
        raise AssertionError(f"{name}: expected shape {tuple(want)}, got {tuple(got.shape)}"
                             + (f"; likely cause: {cause}" if cause else ""))


def grad_of(t, name):
    if t.grad is None:
        raise AssertionError(f"{name}: no gradient reached this input; the output is cut off from it "
                             "(built with torch.tensor(...), .tolist(), .item() or .detach())")
    return t.grad


# -- reverse_padded --------------------------------------------------------------

def brute_reverse(x, lengths):
    """Each row's first `length` steps reversed, one row at a time; the rest copied as is."""
    out = x.clone()
    for b, n in enumerate(lengths.tolist()):
        out[b, :n] = x[b, :n].flip(0)
    return out


def take_steps(x, src):
    """out[b, t] = x[b, src[b, t]] for any trailing dims."""
    return x[torch.arange(x.shape[0])[:, None], src]


def reverse_variants(x, lengths):
    T = x.shape[1]
    t, n = torch.arange(T)[None, :], lengths[:, None]
    real = t < n
    return {
        "reversed over all T steps (x.flip(1)), which moves the pads to the front: reverse only the first "
        "`length` steps of each sequence and leave the pads where they are": lambda: x.flip(1),
        "the padded steps were reversed too (the index length-1-t went negative for t >= length and wrapped "
        "around): a pad must read itself, e.g. torch.where(t < length, length-1-t, t)":
            lambda: take_steps(x, (n - 1 - t) % T),
        "the padded steps hold copies of step 0 (the index length-1-t was clamped at 0): a pad keeps its own value":
            lambda: take_steps(x, (n - 1 - t).clamp(min=0)),
        "the padded steps were overwritten with zeros: leave them untouched, as they are in x":
            lambda: brute_reverse(x, lengths).masked_fill(~real.reshape(*real.shape, *[1] * (x.dim() - 2)), 0),
        "every sequence was reversed with the longest length: each uses its own lengths[b]":
            lambda: brute_reverse(x, torch.full_like(lengths, int(lengths.max()))),
        "reversed along the batch dim 0: time is dim 1": lambda: x.flip(0),
    }


def check_reverse(impl, x, lengths, what):
    got = impl.reverse_padded(x, lengths)
    dims = "BTD" if x.dim() == 3 else "BT" if x.dim() == 2 else None
    check_shape(got, x.shape, f"reverse_padded{what}")
    assert_close(got, brute_reverse(x, lengths), f"reverse_padded{what}", dims=dims,
                 variants=reverse_variants(x, lengths))


# name -> (lengths, T, trailing dims, dtype)
REVERSE_CASES = {
    "ascending lengths 1,3,5, D=2": ([1, 3, 5], 5, (2,), f64),
    "descending lengths 6,4,1, D=3": ([6, 4, 1], 6, (3,), f64),
    "shuffled lengths 3,6,1,4, D=2, float32": ([3, 6, 1, 4], 6, (2,), f32),
    "all lengths equal 4,4,4 (a plain flip), D=2": ([4, 4, 4], 4, (2,), f64),
    "B=1, length 3 of T=5, x (B,T)": ([3], 5, (), f64),
    "T=1, lengths 1,1, D=3": ([1, 1], 1, (3,), f64),
    "no sequence reaches T: lengths 2,3 of T=6, D=1": ([2, 3], 6, (1,), f64),
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", REVERSE_CASES)
def test_reverse_padded_reverses_each_sequence_within_its_length_and_leaves_the_pads(impl, case):
    lengths, T, rest, dtype = REVERSE_CASES[case]
    lengths = long(lengths)
    check_reverse(impl, rand(len(lengths), T, *rest, dtype=dtype), lengths, f" ({case})")


@pytest.mark.points(1)
def test_reverse_padded_handles_trailing_dims_beyond_the_third(impl):
    lengths = long([2, 5, 1])
    check_reverse(impl, rand(3, 5, 2, 3), lengths, " of x (B,T,2,3), lengths 2,5,1")


@pytest.mark.points(1)
def test_reverse_padded_keeps_integer_token_ids(impl):
    lengths = long([4, 1, 6, 3])
    ids = torch.randint(1, 100, (4, 6))
    check_reverse(impl, ids, lengths, " of int64 token ids (B,T), lengths 4,1,6,3")
    check_reverse(impl, ids[..., None].expand(4, 6, 2).to(torch.int32), lengths,
                  " of int32 (B,T,2), lengths 4,1,6,3")


@pytest.mark.points(1)
def test_reverse_padded_passes_each_gradient_back_to_its_step(impl):
    lengths = long([3, 5, 2])
    x, g = rand(3, 5, 2, grad=True), rand(3, 5, 2)
    res = impl.call("reverse_padded", x, lengths, grad_outputs=g)
    leaf = x.detach().clone().requires_grad_(True)
    brute_reverse(leaf, lengths).backward(g)
    assert_close(grad_of(res.args[0], "x"), leaf.grad, "d reverse_padded / d x (lengths 3,5,2)", dims="BTD",
                 variants={"the padding got no gradient: pads are passed through unchanged, so their "
                           "gradient is g at the same step": leaf.grad.masked_fill(~real_mask(lengths, 5)[..., None], 0)})


# -- bidirectional_lstm --------------------------------------------------------------

def torch_bilstm(x, lengths, fwd, bwd):
    """nn.LSTM(bidirectional=True) on the packed batch, with fwd/bwd copied into its weights."""
    B, T, D = x.shape
    H = fwd[1].shape[1]
    lstm = nn.LSTM(D, H, batch_first=True, bidirectional=True, dtype=x.dtype)
    with torch.no_grad():
        for suffix, ws in (("", fwd), ("_reverse", bwd)):
            for name, w in zip(MODULE_NAMES, ws):
                getattr(lstm, name + suffix).copy_(w)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h_n, c_n) = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
    return out, h_n, c_n, lstm


def lstm_run(x, w, mask=None, state=None):
    """Left to right over x (B, N, D) (variants only). With a mask (B, N) the state holds still and the
    output is 0 where it is False; without one every step counts. -> hs, cs (B, N, H), final (h, c)."""
    B, N, _ = x.shape
    H = w[1].shape[1]
    h, c = state if state is not None else (x.new_zeros(B, H), x.new_zeros(B, H))
    hs, cs = [], []
    for t in range(N):
        i, f, g, o = (x[:, t] @ w[0].T + w[2] + h @ w[1].T + w[3]).chunk(4, -1)
        c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h2 = torch.sigmoid(o) * torch.tanh(c2)
        m = torch.ones(B, 1, dtype=torch.bool) if mask is None else mask[:, t, None]
        h, c = torch.where(m, h2, h), torch.where(m, c2, c)
        hs.append(torch.where(m, h2, 0.0))
        cs.append(c)
    return torch.stack(hs, 1), torch.stack(cs, 1), (h, c)


class Mistakes:
    """The pieces wrong bidirectional LSTMs are made of, computed once per input."""

    def __init__(self, x, lengths, fwd, bwd):
        x, fwd, bwd = x.detach(), [w.detach() for w in fwd], [w.detach() for w in bwd]
        B, T, _ = x.shape
        H = fwd[1].shape[1]
        self.lengths, self.T = lengths, T
        mask = real_mask(lengths, T)
        rows, last = torch.arange(B), lengths - 1
        rev = lambda t: brute_reverse(t, lengths)  # noqa: E731
        xr = rev(x)
        # The correct pieces: forward run, backward run in reversed time, put back.
        f_h, f_c, (hf, cf) = lstm_run(x, fwd, mask)
        r_h, r_c, (hb, cb) = lstm_run(xr, bwd, mask)
        self.fwd = (hf, cf)
        self.bwd = (hb, cb)
        self.out_f, self.out_b, self.out_rev = f_h, rev(r_h), r_h
        ones = (x.new_ones(B, H), x.new_ones(B, H))
        # Mistakes, as (forward half, backward half, h_n/c_n as ((hf, cf), (hb, cb))) pieces.
        self.fwd_with_bwd_weights = lstm_run(x, bwd, mask)
        self.bwd_with_fwd_weights = lstm_run(xr, fwd, mask)
        self.fwd_ones = lstm_run(x, fwd, mask, ones)
        self.bwd_ones = lstm_run(xr, bwd, mask, ones)
        self.bwd_from_fwd_state = lstm_run(xr, bwd, mask, (hf, cf))
        self.bwd_left_to_right = lstm_run(x, bwd, mask)
        self.bwd_flip_masked = lstm_run(x.flip(1), bwd, mask)
        self.bwd_flip_unmasked = lstm_run(x.flip(1), bwd)
        self.fwd_through_pads = lstm_run(x, fwd)[2]
        self.bwd_through_pads = lstm_run(xr, bwd)[2]
        # States read off the wrong step.
        self.f_at_T = (f_h[:, T - 1], f_c[:, T - 1])
        self.b_at_len = (self.out_b[rows, last], r_c[:, 0])
        self.b_at_T = (self.out_b[:, T - 1], rev(r_c)[:, T - 1])
        self.r_at_T = (r_h[:, T - 1], r_c[:, T - 1])

    def half_variants(self, half):
        rev = lambda t: brute_reverse(t, self.lengths)  # noqa: E731
        swapped = "the halves are swapped: out is [forward ; backward] along the last dim, out[..., :H] the forward " \
                  "direction and out[..., H:] the backward one, as in nn.LSTM"
        ones = "the initial state is not zero: both directions start from h0 = c0 = 0, as nn.LSTM does when no " \
               "(h0, c0) is given"
        if half == "forward":
            return {
                swapped: self.out_b,
                "the forward direction ran with bwd's weights: fwd is (w_ih, w_hh, b_ih, b_hh) of the forward "
                "direction (weight_*_l0), bwd of the backward one (weight_*_l0_reverse)": self.fwd_with_bwd_weights[0],
                ones: self.fwd_ones[0],
            }
        flip_masked, flip_unmasked = self.bwd_flip_masked[0].flip(1), self.bwd_flip_unmasked[0].flip(1)
        return {
            swapped: self.out_f,
            "the backward direction ran with the forward weights: use bwd = (w_ih, w_hh, b_ih, b_hh) for it "
            "(weight_*_l0_reverse in nn.LSTM)": rev(self.bwd_with_fwd_weights[0]),
            "the backward outputs are still in reversed time order: reverse them back within each length "
            "(reverse_padded), so out[:, t, H:] is the backward state at step t": self.out_rev,
            "the backward outputs were put back with a flip over all T steps: reverse them within each "
            "sequence's own length (reverse_padded)": self.out_rev.flip(1),
            "the backward direction read x.flip(1), which puts the pads first: reverse each sequence within its "
            "own length (reverse_padded), so the backward run starts at step length-1": flip_masked,
            "the backward direction started at step T-1 and ran over the pads before the real steps (as an "
            "unpacked nn.LSTM does): start it at each sequence's own last step, length-1": flip_unmasked,
            "the backward direction read the sequence left to right: it must read steps length-1 down to 0":
                self.bwd_left_to_right[0],
            "the backward direction started from the forward direction's final state: each direction starts "
            "from zeros": rev(self.bwd_from_fwd_state[0]),
            ones: rev(self.bwd_ones[0]),
        }

    def state_variants(self, direction, k):
        """Variants of h_n[direction] (k=0) or c_n[direction] (k=1)."""
        which = "hc"[k]
        swapped = (f"{which}_n[0] must hold the forward direction's final state and {which}_n[1] the backward "
                   "one (nn.LSTM's order): they are swapped")
        ones = "the initial state is not zero: both directions start from h0 = c0 = 0"
        holds_h = {"c_n holds the hidden states h: it must hold the cell states c": ((self.fwd, self.bwd)[direction][0])} \
            if k == 1 else {}
        if direction == 0:
            return {
                swapped: self.bwd[k],
                **holds_h,
                "the forward state kept running over the pads: its final state is the one at step length-1, so "
                "hold the state still once t >= length": self.fwd_through_pads[k],
                f"the forward state was read at step T-1, which is padding for sequences shorter than T: take it "
                f"at each sequence's step length-1": self.f_at_T[k],
                "the forward direction ran with bwd's weights: fwd is the forward direction's (w_ih, w_hh, b_ih, b_hh)":
                    self.fwd_with_bwd_weights[2][k],
                ones: self.fwd_ones[2][k],
            }
        return {
            swapped: self.fwd[k],
            **holds_h,
            "the backward state was read at step length-1, where the backward direction STARTS: it ends at step 0, "
            "so its final state is the one at step 0 (out[:, 0, H:] for h)": self.b_at_len[k],
            "the backward state was read at step T-1, which is where it starts for full-length sequences and "
            "padding for shorter ones: the backward direction ends at step 0": self.b_at_T[k],
            "the backward state was read at step T-1 of the reversed run, which is padding for shorter "
            "sequences: the reversed run ends at step length-1, the sequence's step 0": self.r_at_T[k],
            "the backward state kept running over the pads after the sequence's step 0: hold the state still "
            "once t >= length": self.bwd_through_pads[k],
            "the backward direction read x.flip(1), which puts the pads first: reverse each sequence within its "
            "own length (reverse_padded)": self.bwd_flip_masked[2][k],
            "the backward direction started at step T-1 and ran over the pads (as an unpacked nn.LSTM does): "
            "start it at each sequence's own last step, length-1": self.bwd_flip_unmasked[2][k],
            "the backward direction ran with the forward weights: use bwd's (w_ih, w_hh, b_ih, b_hh) for it":
                self.bwd_with_fwd_weights[2][k],
            "the backward direction read the sequence left to right: it must read steps length-1 down to 0":
                self.bwd_left_to_right[2][k],
            "the backward direction started from the forward direction's final state: each direction starts "
            "from zeros": self.bwd_from_fwd_state[2][k],
            ones: self.bwd_ones[2][k],
        }


def lstm_inputs(lengths, T, D, H, dtype=f64, grad=False):
    lengths = long(lengths)
    # The padding holds noise, not zeros: nothing of it may reach the result.
    x = rand(len(lengths), T, D, dtype=dtype, grad=grad)
    return x, lengths, weights(D, H, dtype, grad), weights(D, H, dtype, grad)


def call_bilstm(impl, x, lengths, fwd, bwd, **kw):
    res = impl.call("bidirectional_lstm", x, lengths, fwd, bwd, **kw)
    out, states = unpack(res.value, ("out", "(h_n, c_n)"), "bidirectional_lstm")
    h_n, c_n = unpack(states, ("h_n", "c_n"), "bidirectional_lstm's second item")
    return res, out, h_n, c_n


# name -> (lengths, T, D, H, dtype)
LSTM_CASES = {
    "shuffled lengths 3,5,1,4, D=3, H=2": ([3, 5, 1, 4], 5, 3, 2, f64),
    "ascending lengths 1,2,4,6, D=2, H=3": ([1, 2, 4, 6], 6, 2, 3, f64),
    "descending lengths 5,3,2, D=4, H=2": ([5, 3, 2], 5, 4, 2, f64),
    "all lengths equal 4,4,4 (no padding), D=2, H=3": ([4, 4, 4], 4, 2, 3, f64),
    "B=1, length T=4, D=3, H=2": ([4], 4, 3, 2, f64),
    "B=1, length 2 of T=5, D=2, H=2": ([2], 5, 2, 2, f64),
    "no sequence reaches T: lengths 2,3,1 of T=5, D=2, H=2": ([2, 3, 1], 5, 2, 2, f64),
    "T=1: lengths 1,1, D=3, H=2": ([1, 1], 1, 3, 2, f64),
    "H=1, D=4, lengths 2,4,3": ([2, 4, 3], 4, 4, 1, f64),
    "float32, shuffled lengths 2,5,3, D=3, H=4": ([2, 5, 3], 5, 3, 4, f32),
}


def out_shape_causes(B, T, H, lengths):
    return [((B, int(lengths.max()), 2 * H),
             "out stops at the longest length: keep all T steps (pad_packed_sequence(..., total_length=T))"),
            ((B, T, H), "out has H features: concatenate the two directions to (B, T, 2H), do not add them"),
            ((T, B, 2 * H), "out is time-major (T, B, 2H): this function is batch-first (B, T, 2H)"),
            ((2, B, T, H), "the directions were stacked: concatenate them along the last dim, (B, T, 2H)")]


def check_out(out, want, mistakes, lengths, what):
    B, T, H2 = want.shape
    H = H2 // 2
    check_shape(out, want.shape, f"out{what}", out_shape_causes(B, T, H, lengths))
    pad = ~real_mask(lengths, T)[..., None]  # (B, T, 1)
    # Real steps first, one direction at a time, then the padding.
    for half, part in (("forward", slice(0, H)), ("backward", slice(H, 2 * H))):
        variants = {c: v.masked_fill(pad, 0) for c, v in mistakes.half_variants(half).items()}
        assert_close(out[..., part].masked_fill(pad, 0), want[..., part],
                     f"out[..., {'' if half == 'forward' else 'H'}:{'H' if half == 'forward' else '2H'}] "
                     f"(the {half} direction) at the real steps{what}", dims="BTH", variants=variants)
    at_pads = out.masked_fill(~pad, 0)
    ok = at_pads == 0
    if not bool(ok.all()):
        raise AssertionError(describe_mismatch(at_pads, torch.zeros_like(want), ok, f"out at the padded steps{what}",
                                               "BTH")
                             + "; likely cause: outputs at padded steps must be exactly 0, as pad_packed_sequence "
                               "leaves them: set them to 0 where t >= length")


def check_states(h_n, c_n, want_h, want_c, mistakes, what):
    B, H = want_h.shape[1:]
    causes = [((B, H), "a single state: stack the forward and backward states into (2, B, H)"),
              ((B, 2 * H), "the two states were concatenated: nn.LSTM stacks them into (2, B, H)"),
              ((1, B, H), "only one direction's state: h_n and c_n hold both, (2, B, H)"),
              ((B, 2, H), "batch first: h_n and c_n are (2, B, H), directions first, as in nn.LSTM")]
    for k, (got, want, which) in enumerate(((h_n, want_h, "h_n"), (c_n, want_c, "c_n"))):
        check_shape(got, want.shape, f"{which}{what}", causes)
        for d, label in ((0, "the forward direction's state at step length-1"),
                         (1, "the backward direction's state at step 0")):
            assert_close(got[d], want[d], f"{which}[{d}] ({label}){what}", dims="BH",
                         variants=mistakes.state_variants(d, k))


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("case", LSTM_CASES)
def test_bidirectional_lstm_output_matches_nn_lstm_on_the_packed_batch(impl, case):
    x, lengths, fwd, bwd = lstm_inputs(*LSTM_CASES[case])
    _, out, _, _ = call_bilstm(impl, x, lengths, fwd, bwd)
    want, _, _, _ = torch_bilstm(x, lengths, fwd, bwd)
    check_out(out, want, Mistakes(x, lengths, fwd, bwd), lengths, f" ({case})")


@pytest.mark.points(1)
@pytest.mark.parametrize("case", LSTM_CASES)
def test_final_states_are_forward_at_length_minus_one_and_backward_at_step_zero(impl, case):
    x, lengths, fwd, bwd = lstm_inputs(*LSTM_CASES[case])
    _, _, h_n, c_n = call_bilstm(impl, x, lengths, fwd, bwd)
    _, want_h, want_c, _ = torch_bilstm(x, lengths, fwd, bwd)
    check_states(h_n, c_n, want_h, want_c, Mistakes(x, lengths, fwd, bwd), f" ({case})")


GRAD_CASES = {
    "shuffled lengths 3,5,1,4, D=3, H=2": ([3, 5, 1, 4], 5, 3, 2, f64),
    "float32, lengths 2,4,4,1, D=2, H=3": ([2, 4, 4, 1], 4, 2, 3, f32),
}


@pytest.mark.points(3)
@pytest.mark.parametrize("case", GRAD_CASES)
def test_gradients_wrt_x_and_every_weight_match_autograd_through_nn_lstm(impl, case):
    x, lengths, fwd, bwd = lstm_inputs(*GRAD_CASES[case], grad=True)
    B, T, _ = x.shape
    H = fwd[1].shape[1]
    g = rand(B, T, 2 * H, dtype=x.dtype)
    g_h, g_c = rand(2, B, H, dtype=x.dtype), rand(2, B, H, dtype=x.dtype)
    # Gradient flows in through `out` and both final states (detached states lose it).
    res, _, _, _ = call_bilstm(impl, x, lengths, fwd, bwd, grad_outputs=(g, (g_h, g_c)))
    want, want_h, want_c, lstm = torch_bilstm(x, lengths, fwd, bwd)
    torch.autograd.backward([want, want_h, want_c], [g, g_h, g_c])
    got_x, got_fwd, got_bwd = res.args[0], res.args[2], res.args[3]
    # nn.LSTM on the packed batch gives the padded steps of x exactly zero gradient.
    assert_close(grad_of(got_x, "x"), x.grad, f"d loss / d x ({case}), loss through out, h_n and c_n", dims="BTD")
    for direction, got_ws, suffix in (("fwd", got_fwd, ""), ("bwd", got_bwd, "_reverse")):
        for name, got_w, module_name in zip(WEIGHT_NAMES, got_ws, MODULE_NAMES):
            assert_close(grad_of(got_w, f"{direction} {name}"), getattr(lstm, module_name + suffix).grad,
                         f"d loss / d {direction} {name} ({case}; nn.LSTM's {module_name + suffix})")
