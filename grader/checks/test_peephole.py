"""Grader for `peephole`: the peephole LSTM cell and layer (Gers and Schmidhuber 2000).

Expected values come from an independent formula written here (one matmul
per gate on row slices of the weights, a Python loop over time), from
nn.LSTMCell and nn.LSTM when the peepholes are zero, and from autograd
through the formula. The wrong variants below are the mistakes learners
make, used only to name the likely cause of a mismatch.

Shapes: B batch, T time, D input size, H hidden size.
"""

from contextlib import contextmanager

import pytest
import torch
from torch import nn

from grader.compare import assert_close
from grader.sandbox import SubmissionError

f64, f32 = torch.float64, torch.float32
WEIGHTS = ("w_ih", "w_hh", "b", "w_ci", "w_cf", "w_co")


def rand(*shape, dtype=f64, scale=1.0):
    return torch.randn(*shape, dtype=dtype) * scale


def params(D, H, dtype=f64, peep_scale=1.0):
    """Weights in nn.LSTMCell layout (rows i, f, g, o) with one bias, plus peephole vectors (H,)."""
    return {"w_ih": rand(4 * H, D, dtype=dtype, scale=0.6), "w_hh": rand(4 * H, H, dtype=dtype, scale=0.6),
            "b": rand(4 * H, dtype=dtype, scale=0.5), "w_ci": rand(H, dtype=dtype, scale=peep_scale),
            "w_cf": rand(H, dtype=dtype, scale=peep_scale), "w_co": rand(H, dtype=dtype, scale=peep_scale)}


def weights(p):
    return [p[k] for k in WEIGHTS]


# -- the independent formula, and the mistakes it can be told to make ------------

# Which peephole each gate adds, and whether it looks at the previous cell
# ("old") or the one just computed ("new"); an optional third entry changes how.
RIGHT = {"i": ("w_ci", "old"), "f": ("w_cf", "old"), "o": ("w_co", "new")}


def step(x, h, c, p, *, order="ifgo", peep=RIGHT, g_act=torch.tanh, h_tanh=True, detach_peep=False):
    """(h_new, c_new) by one matmul per gate. ``order`` is the row order the code assumed."""
    H = h.shape[-1]

    def pre(gate):
        rows = slice(order.index(gate) * H, (order.index(gate) + 1) * H)
        return x @ p["w_ih"][rows].T + h @ p["w_hh"][rows].T + p["b"][rows]

    def peek(gate, new=None):
        if gate not in peep:
            return 0.0
        name, which, *how = peep[gate]
        cell = c if which == "old" else new
        cell = cell.detach() if detach_peep else cell
        cell = torch.tanh(cell) if "tanh" in how else cell
        return (cell @ p[name])[:, None] if "dot" in how else p[name] * cell

    i = torch.sigmoid(pre("i") + peek("i"))
    f = torch.sigmoid(pre("f") + peek("f"))
    g = g_act(pre("g") + peek("g"))
    c_new = f * c + i * g
    o = torch.sigmoid(pre("o") + peek("o", c_new))
    return o * (torch.tanh(c_new) if h_tanh else c_new), c_new


def unroll(x, h0, c0, p, *, carry_h=True, carry_c=True, **mistake):
    """(out, h_T, c_T) by a loop over time; carry_h/carry_c=False restart every step from h0/c0."""
    h, c, outs = h0, c0, []
    for t in range(x.shape[1]):
        h, c = step(x[:, t], h if carry_h else h0, c if carry_c else c0, p, **mistake)
        outs.append(h)
    return torch.stack(outs, 1), h, c


def with_peep(**changes):
    peep = dict(RIGHT)
    for gate, entry in changes.items():
        if entry is None:
            peep.pop(gate)
        else:
            peep[gate] = entry
    return peep


# Each catalogued mistake: the likely cause a learner reads, and how the formula makes it.
MISTAKES = {
    "gate order i, f, o, g; PyTorch stacks the rows of w_ih, w_hh and b as i, f, g, o": dict(order="ifog"),
    "gate order i, g, f, o (TensorFlow's i, j, f, o); PyTorch stacks the rows of w_ih, w_hh and b as i, f, g, o":
        dict(order="igfo"),
    "input and forget rows swapped (f, i, g, o); PyTorch stacks the rows of w_ih, w_hh and b as i, f, g, o":
        dict(order="figo"),
    "the output gate's peephole saw the OLD cell state c_prev; it must see the new one, "
    "c = f * c_prev + i * g, so compute c before o": dict(peep=with_peep(o=("w_co", "old"))),
    "the input and forget peepholes are swapped: w_ci belongs to the input gate i, w_cf to the forget gate f":
        dict(peep=with_peep(i=("w_cf", "old"), f=("w_ci", "old"))),
    "the output peephole used w_co * tanh(c); a peephole sees the cell state itself: w_co * c":
        dict(peep=with_peep(o=("w_co", "new", "tanh"))),
    "the input gate has no peephole term: add w_ci * c_prev inside its sigmoid": dict(peep=with_peep(i=None)),
    "the forget gate has no peephole term: add w_cf * c_prev inside its sigmoid": dict(peep=with_peep(f=None)),
    "the output gate has no peephole term: add w_co * c (the new cell state) inside its sigmoid":
        dict(peep=with_peep(o=None)),
    "w_ci * c_prev went into the candidate g instead of the input gate i; g has no peephole":
        dict(peep=with_peep(i=None, g=("w_ci", "old"))),
    "a peephole was added to the candidate g; only the gates i, f and o have peepholes":
        dict(peep=with_peep(g=("w_ci", "old"))),
    "the peepholes were used as a matrix product c @ w (one number per example, added to every unit); "
    "peepholes are diagonal: multiply elementwise, w * c":
        dict(peep={gate: (name, which, "dot") for gate, (name, which) in RIGHT.items()}),
    "the candidate g used sigmoid; it uses tanh": dict(g_act=torch.sigmoid),
    "h = o * c; the new hidden state is o * tanh(c)": dict(h_tanh=False),
}


def cell_variants(x, h, c, p, which):
    """Variants of output ``which`` (0: h_new, 1: c_new) of the cell, one per mistake."""
    return {cause: (lambda kw=kw: step(x, h, c, p, **kw)[which]) for cause, kw in MISTAKES.items()}


# -- plumbing -------------------------------------------------------------------------

CRASH_HINT = ("check the shapes: w_ih (4H, D) and w_hh (4H, H) are applied as x @ w_ih.T and h @ w_hh.T, "
              "b is (4H,), and the peephole vectors w_ci, w_cf, w_co are (H,) and multiply the cell state "
              "elementwise (w_ci * c), they are not matrices")


@contextmanager
def hint_on_error(hint=CRASH_HINT):
    """Add a hint to a crash of the submission (not to timeouts, forbidden calls or stubs)."""
    try:
        yield
    except SubmissionError as exc:
        if type(exc) is not SubmissionError or "not implemented yet" in str(exc):
            raise
        raise SubmissionError(f"{exc}; {hint}") from None


def unpack_cell(value):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        length = f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""
        raise AssertionError(f"`peephole_lstm_cell` must return a tuple (h_new, c_new), got {type(value).__name__}{length}")
    return value


def unpack_layer(value):
    ok = isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], (tuple, list)) \
        and len(value[1]) == 2
    if not ok:
        raise AssertionError("`peephole_lstm_layer` must return (out, (h_T, c_T)): a pair whose second "
                             f"item is the pair of final states, got {type(value).__name__}"
                             + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    return value[0], value[1][0], value[1][1]


def call_cell(impl, x, h, c, p):
    with hint_on_error():
        return unpack_cell(impl.peephole_lstm_cell(x, h, c, *weights(p)))


def call_layer(impl, x, h0, c0, p):
    with hint_on_error():
        return unpack_layer(impl.peephole_lstm_layer(x, h0, c0, *weights(p)))


def grad_of(t, name):
    if t.grad is None:
        raise AssertionError(f"{name}: no gradient reached this input; the output is cut off from it "
                             "(.detach(), torch.tensor(...), .item() or an in-place copy into a fresh tensor)")
    return t.grad


def autograd(fn, inputs, g):
    """d<fn(*inputs), g> / d inputs on fresh leaves (for expected values and variants)."""
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    outs = fn(*leaves)
    pairs = [(o, gi) for o, gi in zip(outs, g) if gi is not None]
    found = torch.autograd.grad([o for o, _ in pairs], leaves, [gi for _, gi in pairs], allow_unused=True)
    return [torch.zeros_like(leaf) if d is None else d for leaf, d in zip(leaves, found)]


def check(got, want, name, *, dims=None, variants=None):
    """assert_close that names only mistakes which change this output."""
    want = want.detach()

    def unless_same(variant):
        def build():
            v = variant() if callable(variant) else variant
            if isinstance(v, torch.Tensor) and v.shape == want.shape and torch.allclose(
                    v.detach().to(want.dtype), want, rtol=1e-4, atol=1e-5, equal_nan=True):
                return None  # this mistake leaves this output unchanged: it cannot explain a mismatch
            return v
        return build

    kept = {cause: unless_same(v) for cause, v in (variants or {}).items()}
    # float32 rounding in a float64 run is named by assert_close itself.
    assert_close(got, want, name, dims=dims, variants=kept)


# -- the cell -----------------------------------------------------------------------

CELL_SHAPES = {"B=3,D=5,H=4": (3, 5, 4), "B=1,D=2,H=3": (1, 2, 3), "B=2,D=3,H=1": (2, 3, 1),
               "B=4,D=1,H=6": (4, 1, 6)}


def cell_inputs(B, D, H, dtype=f64, peep_scale=1.0):
    return rand(B, D, dtype=dtype), rand(B, H, dtype=dtype), rand(B, H, dtype=dtype, scale=1.5), \
        params(D, H, dtype, peep_scale)


def check_cell(impl, x, h, c, p, what=""):
    h_new, c_new = call_cell(impl, x, h, c, p)
    want_h, want_c = step(x, h, c, p)
    check(c_new, want_c, f"c_new{what}", dims="BH", variants=cell_variants(x, h, c, p, 1))
    check(h_new, want_h, f"h_new{what}", dims="BH", variants=cell_variants(x, h, c, p, 0))


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("shape", CELL_SHAPES)
def test_cell_matches_an_independent_per_gate_formula(impl, shape):
    check_cell(impl, *cell_inputs(*CELL_SHAPES[shape]), what=f" ({shape})")


@pytest.mark.points(1)
@pytest.mark.parametrize("shape", ["B=3,D=5,H=4", "B=1,D=2,H=3"])
def test_cell_in_float32_matches_the_formula_and_stays_float32(impl, shape):
    x, h, c, p = cell_inputs(*CELL_SHAPES[shape], dtype=f32)
    h_new, c_new = call_cell(impl, x, h, c, p)
    # The truth in float64, rounded to float32: what a correct float32 computation approaches.
    x, h, c, p = x.double(), h.double(), c.double(), {k: v.double() for k, v in p.items()}
    want_h, want_c = step(x, h, c, p)
    check(c_new, want_c.float(), f"c_new in float32 ({shape})", dims="BH", variants=cell_variants(x, h, c, p, 1))
    check(h_new, want_h.float(), f"h_new in float32 ({shape})", dims="BH", variants=cell_variants(x, h, c, p, 0))


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("shape", ["B=3,D=5,H=4", "B=1,D=2,H=3", "B=2,D=3,H=1"])
def test_zero_peepholes_equal_nn_lstmcell_with_b_ih_b_and_b_hh_zero(impl, shape):
    B, D, H = CELL_SHAPES[shape]
    x, h, c, p = cell_inputs(B, D, H)
    for k in ("w_ci", "w_cf", "w_co"):
        p[k] = torch.zeros(H, dtype=f64)
    ref = nn.LSTMCell(D, H, dtype=f64)
    with torch.no_grad():
        ref.weight_ih.copy_(p["w_ih"])
        ref.weight_hh.copy_(p["w_hh"])
        ref.bias_ih.copy_(p["b"])
        ref.bias_hh.zero_()
        want_h, want_c = ref(x, (h, c))
    h_new, c_new = call_cell(impl, x, h, c, p)
    what = f" with zero peepholes, against nn.LSTMCell ({shape})"
    check(c_new, want_c, "c_new" + what, dims="BH", variants=cell_variants(x, h, c, p, 1))
    check(h_new, want_h, "h_new" + what, dims="BH", variants=cell_variants(x, h, c, p, 0))


@pytest.mark.points(2)
@pytest.mark.parametrize("only", ["w_ci", "w_cf", "w_co"])
def test_each_peephole_reaches_its_own_gate(impl, only):
    # Only one peephole is nonzero, so a mismatch singles out that gate's term.
    x, h, c, p = cell_inputs(3, 4, 5, peep_scale=1.5)
    for k in ("w_ci", "w_cf", "w_co"):
        if k != only:
            p[k] = torch.zeros_like(p[k])
    check_cell(impl, x, h, c, p, what=f" with only {only} nonzero")


@pytest.mark.points(3)
def test_the_output_gate_sees_the_new_cell_state(impl):
    B, D, H = 4, 3, 5
    x, h, _, p = cell_inputs(B, D, H)
    # A large c_prev and a closed forget gate (f ~ 0): the new cell i * g is
    # small, far from c_prev, so peeking at the wrong one shows.
    c = torch.where(torch.rand(B, H) < 0.5, -3.0, 3.0).to(f64)
    p["b"][H:2 * H] = -10.0
    p["w_ci"] = torch.zeros(H, dtype=f64)
    p["w_cf"] = torch.zeros(H, dtype=f64)
    p["w_co"] = rand(H, scale=2.0)
    check_cell(impl, x, h, c, p, what=" when c_prev and c differ (forget gate closed, only w_co nonzero)")


def cell_grad_check(impl, x, h, c, p, what):
    inputs = [x, h, c, *weights(p)]
    names = ["x", "h", "c", *WEIGHTS]
    B, H = h.shape
    g = (rand(B, H), rand(B, H))  # d loss / d h_new, d loss / d c_new
    with hint_on_error():
        res = impl.call("peephole_lstm_cell", *[t.clone().requires_grad_(True) for t in inputs], grad_outputs=g)
    unpack_cell(res.value)

    def fn(**mistake):
        return lambda x, h, c, *w: step(x, h, c, dict(zip(WEIGHTS, w)), **mistake)

    want = autograd(fn(), inputs, g)
    kinds = {**MISTAKES, "the peephole term was cut off from the graph (.detach() on c): gradients must flow "
                         "through w * c into both w and c": dict(detach_peep=True)}
    for k, name in enumerate(names):
        check(grad_of(res.args[k], f"d loss / d {name}"), want[k], f"d loss / d {name}{what}",
              dims={"x": "BD", "h": "BH", "c": "BH"}.get(name),
                     variants={cause: (lambda kw=kw, k=k: autograd(fn(**kw), inputs, g)[k])
                               for cause, kw in kinds.items()})


@pytest.mark.points(2)
@pytest.mark.parametrize("shape", ["B=3,D=5,H=4", "B=1,D=2,H=3"])
def test_cell_gradients_match_autograd_through_the_formula(impl, shape):
    cell_grad_check(impl, *cell_inputs(*CELL_SHAPES[shape]), what=f" ({shape})")


# -- the layer ----------------------------------------------------------------------

LAYER_SHAPES = {"B=2,T=5,D=3,H=4": (2, 5, 3, 4), "B=1,T=1,D=2,H=3": (1, 1, 2, 3),
                "B=3,T=4,D=2,H=1": (3, 4, 2, 1), "B=1,T=6,D=4,H=2": (1, 6, 4, 2)}


def layer_inputs(B, T, D, H, dtype=f64):
    return rand(B, T, D, dtype=dtype), rand(B, H, dtype=dtype), rand(B, H, dtype=dtype, scale=1.5), \
        params(D, H, dtype)


def layer_variants(x, h0, c0, p, which):
    """Variants of output ``which`` (0: out, 1: h_T, 2: c_T): the cell's mistakes unrolled, and the loop's."""
    kinds = {**MISTAKES,
             "the cell state was not carried between steps: every step started from c0":
                 dict(carry_c=False),
             "the hidden state was not carried between steps: every step started from h0":
                 dict(carry_h=False)}
    found = {cause: (lambda kw=kw: unroll(x, h0, c0, p, **kw)[which]) for cause, kw in kinds.items()}
    found["the bias b was added twice per step (once with the input projection, once more in the cell); "
          "there is one bias, added once"] = lambda: unroll(x, h0, c0, {**p, "b": 2 * p["b"]})[which]
    return found


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("shape", LAYER_SHAPES)
def test_layer_output_matches_the_formula_unrolled_over_time(impl, shape):
    x, h0, c0, p = layer_inputs(*LAYER_SHAPES[shape])
    out, _, _ = call_layer(impl, x, h0, c0, p)
    check(out, unroll(x, h0, c0, p)[0], f"out ({shape})", dims="BTH",
                 variants={**layer_variants(x, h0, c0, p, 0),
                           "out is (T, B, H): the contract is batch first, stack the steps along dim 1":
                               torch.zeros(x.shape[1], x.shape[0], h0.shape[1])})


@pytest.mark.points(2)
@pytest.mark.parametrize("shape", ["B=2,T=5,D=3,H=4", "B=3,T=4,D=2,H=1"])
def test_layer_final_state_is_the_state_after_the_last_step(impl, shape):
    x, h0, c0, p = layer_inputs(*LAYER_SHAPES[shape])
    out, h_T, c_T = call_layer(impl, x, h0, c0, p)
    want_out, want_h, want_c = unroll(x, h0, c0, p)
    B, H = h0.shape
    common = {"returned with a leading layer dim (1, B, H) like nn.LSTM's h_n; the contract returns (B, H)":
              torch.zeros(1, B, H)}
    check(h_T, want_h, f"h_T ({shape})", dims="BH", variants={
        **common,
        "h_T and c_T are swapped: return (out, (h_T, c_T))": want_c,
        "h_T is the state after the FIRST step (out[:, 0]); it is the one after the last step, out[:, -1]":
            want_out[:, 0],
        "returned the initial state h0 instead of the state after the last step": h0,
        **layer_variants(x, h0, c0, p, 1)})
    check(c_T, want_c, f"c_T ({shape})", dims="BH", variants={
        **common,
        "h_T and c_T are swapped: return (out, (h_T, c_T))": want_h,
        "returned the initial state c0 instead of the cell state after the last step": c0,
        **layer_variants(x, h0, c0, p, 2)})


@pytest.mark.points(2)
def test_layer_with_zero_peepholes_equals_one_layer_nn_lstm(impl):
    B, T, D, H = 3, 4, 5, 2
    x, h0, c0, p = layer_inputs(B, T, D, H)
    for k in ("w_ci", "w_cf", "w_co"):
        p[k] = torch.zeros(H, dtype=f64)
    ref = nn.LSTM(D, H, batch_first=True, dtype=f64)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(p["w_ih"])
        ref.weight_hh_l0.copy_(p["w_hh"])
        ref.bias_ih_l0.copy_(p["b"])
        ref.bias_hh_l0.zero_()
        want_out, (want_h, want_c) = ref(x, (h0[None], c0[None]))
    out, h_T, c_T = call_layer(impl, x, h0, c0, p)
    what = " with zero peepholes, against nn.LSTM"
    check(out, want_out, "out" + what, dims="BTH", variants=layer_variants(x, h0, c0, p, 0))
    check(h_T, want_h[0], "h_T" + what, dims="BH")
    check(c_T, want_c[0], "c_T" + what, dims="BH")


@pytest.mark.points(1)
def test_layer_in_float32_matches_the_formula_and_stays_float32(impl):
    x, h0, c0, p = layer_inputs(2, 6, 3, 4, dtype=f32)
    out, h_T, c_T = call_layer(impl, x, h0, c0, p)
    x, h0, c0, p = x.double(), h0.double(), c0.double(), {k: v.double() for k, v in p.items()}
    want = unroll(x, h0, c0, p)
    for k, (name, got, dims) in enumerate(zip(("out", "h_T", "c_T"), (out, h_T, c_T), ("BTH", "BH", "BH"))):
        check(got, want[k].float(), f"{name} in float32", dims=dims, variants=layer_variants(x, h0, c0, p, k))


@pytest.mark.points(3)
def test_layer_gradients_match_autograd_through_the_formula(impl):
    B, T, D, H = 2, 4, 3, 2
    x, h0, c0, p = layer_inputs(B, T, D, H)
    inputs = [x, h0, c0, *weights(p)]
    names = ["x", "h0", "c0", *WEIGHTS]
    g_out = rand(B, T, H)
    # Only `out` gets a gradient: it reaches every input through all T steps.
    with hint_on_error():
        res = impl.call("peephole_lstm_layer", *[t.clone().requires_grad_(True) for t in inputs],
                        grad_outputs=(g_out, None))
    unpack_layer(res.value)

    def fn(**mistake):
        return lambda x, h0, c0, *w: unroll(x, h0, c0, dict(zip(WEIGHTS, w)), **mistake)[:1]

    want = autograd(fn(), inputs, (g_out,))
    kinds = {**MISTAKES, "the peephole term was cut off from the graph (.detach() on c): gradients must flow "
                         "through w * c into both w and c": dict(detach_peep=True)}
    for k, name in enumerate(names):
        check(grad_of(res.args[k], f"d loss / d {name}"), want[k], f"d loss / d {name} through out",
              dims={"x": "BTD", "h0": "BH", "c0": "BH"}.get(name),
                     variants={cause: (lambda kw=kw, k=k: autograd(fn(**kw), inputs, (g_out,))[k])
                               for cause, kw in kinds.items()})
