"""Grader for `lstm_gru`: LSTM and GRU cells and layers, and their parameter counts.

Expected values come from nn.LSTMCell, nn.GRUCell, nn.LSTM and nn.GRU holding
the same weights (copied in here, in the grader's process), gradients from
autograd through those modules, counts from the modules' parameters. The
configurable steps below build the mistakes learners make, used only to name
the likely cause of a mismatch, never as expected values.
"""

import pytest
import torch
from torch import nn

from grader.compare import assert_close, assert_equal

f64, f32 = torch.float64, torch.float32


def rand(*shape, dtype=f64, scale=1.0, grad=False):
    return (torch.randn(*shape, dtype=dtype) * scale).requires_grad_(grad)


def weights(G, D, H, bias="both", dtype=f64, grad=False):
    """[w_ih (GH, D), w_hh (GH, H), b_ih, b_hh (GH,) or None] in nn.LSTMCell / nn.GRUCell layout."""
    w = [rand(G * H, D, dtype=dtype, scale=0.6, grad=grad), rand(G * H, H, dtype=dtype, scale=0.6, grad=grad)]
    w += [rand(G * H, dtype=dtype, scale=0.5, grad=grad) if bias in ("both", name) else None
          for name in ("b_ih", "b_hh")]
    return w


def module(kind, w, dtype=f64):
    """An nn.`kind` holding the weights w; a bias that is None becomes a zero bias."""
    w_ih, w_hh, b_ih, b_hh = w
    G = {"LSTM": 4, "GRU": 3}[kind.removesuffix("Cell")]
    H, D = w_ih.shape[0] // G, w_ih.shape[1]
    has_bias = b_ih is not None or b_hh is not None
    layer = not kind.endswith("Cell")
    extra = dict(batch_first=True) if layer else {}
    m = getattr(nn, kind)(D, H, bias=has_bias, dtype=dtype, **extra)
    sfx = "_l0" if layer else ""
    with torch.no_grad():
        getattr(m, "weight_ih" + sfx).copy_(w_ih)
        getattr(m, "weight_hh" + sfx).copy_(w_hh)
        if has_bias:
            for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
                getattr(m, name + sfx).copy_(b if b is not None else torch.zeros(G * H, dtype=dtype))
    return m


def module_params(m):
    """The module's (w_ih, w_hh, b_ih, b_hh), to read their .grad."""
    sfx = "_l0" if hasattr(m, "weight_ih_l0") else ""
    return [getattr(m, n + sfx, None) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


# -- wrong variants (only to name the likely cause) ---------------------------------

def proj(inp, w, reshaped):
    """inp @ w.T, or the classic slip of reshaping w (out, in) to (in, out) instead of transposing."""
    return inp @ (w.reshape(w.shape[1], w.shape[0]) if reshaped else w.T)


def lstm_step(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None, *, order="ifgo", g_act=torch.tanh,
              out_tanh=True, reshape="", drop_lone_bias=False):
    if drop_lone_bias and (b_ih is None) != (b_hh is None):
        b_ih = b_hh = None
    gates = proj(x, w_ih, "ih" in reshape) + proj(h, w_hh, "hh" in reshape)  # (B, 4H)
    for b in (b_ih, b_hh):
        gates = gates if b is None else gates + b
    blocks = dict(zip(order, gates.chunk(4, 1)))
    i, f, o = (torch.sigmoid(blocks[k]) for k in "ifo")
    c = f * c + i * g_act(blocks["g"])
    return o * (torch.tanh(c) if out_tanh else c), c


def gru_step(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, order="rzn", n_act=torch.tanh, reset="after",
             mix_reversed=False, reshape="", drop_lone_bias=False):
    if drop_lone_bias and (b_ih is None) != (b_hh is None):
        b_ih = b_hh = None
    H = h.shape[1]
    gi = proj(x, w_ih, "ih" in reshape) + (0 if b_ih is None else b_ih)  # (B, 3H)
    gh = proj(h, w_hh, "hh" in reshape) + (0 if b_hh is None else b_hh)  # (B, 3H)
    bi, bh = dict(zip(order, gi.chunk(3, 1))), dict(zip(order, gh.chunk(3, 1)))
    r, z = torch.sigmoid(bi["r"] + bh["r"]), torch.sigmoid(bi["z"] + bh["z"])
    k = order.index("n")
    w_hn, b_hn = w_hh[k * H:(k + 1) * H], (0 if b_hh is None else b_hh[k * H:(k + 1) * H])
    pre = {"after": lambda: bi["n"] + r * bh["n"],
           "before": lambda: bi["n"] + (r * h) @ w_hn.T + b_hn,
           "bias outside": lambda: bi["n"] + r * (h @ w_hn.T) + b_hn,
           "none": lambda: bi["n"] + bh["n"]}[reset]()
    n = n_act(pre)
    return z * n + (1 - z) * h if mix_reversed else (1 - z) * n + z * h


RESHAPED = ("weights reshaped instead of transposed: w (G*H, in) is applied as inp @ w.T; "
            "w.reshape(in, G*H) scrambles the rows")
LSTM_MISTAKES = {
    "gate order i, f, o, g; PyTorch stacks the gate rows as i, f, g, o": dict(order="ifog"),
    "input and forget gates swapped (read as f, i, g, o); PyTorch stacks the gate rows as i, f, g, o": dict(order="figo"),
    "missing tanh on the cell output: h' = o * tanh(c'), not o * c'": dict(out_tanh=False),
    "sigmoid instead of tanh for the candidate g (the 3rd block): g = tanh(W_ig x + W_hg h + b)": dict(g_act=torch.sigmoid),
    RESHAPED: dict(reshape="ih hh"),
    "w_ih " + RESHAPED: dict(reshape="ih"),
    "w_hh " + RESHAPED: dict(reshape="hh"),
    "a bias given alone (the other None) was ignored: add b_ih and b_hh each when it is not None": dict(drop_lone_bias=True),
}
GRU_MISTAKES = {
    "reset gate applied before the hidden matmul, W_hn (r * h) (Cho et al., the notes); PyTorch applies it after: "
    "n = tanh(W_in x + b_in + r * (W_hn h + b_hn))": dict(reset="before"),
    "b_hn added outside the reset gate; PyTorch puts it inside: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))":
        dict(reset="bias outside"),
    "the reset gate r never multiplies the candidate's hidden term: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))":
        dict(reset="none"),
    "interpolation reversed: z keeps the OLD state, h' = (1 - z) * n + z * h, not z * n + (1 - z) * h":
        dict(mix_reversed=True),
    "sigmoid instead of tanh for the candidate n": dict(n_act=torch.sigmoid),
    "gate order z, r, n; PyTorch stacks the gate rows as r, z, n": dict(order="zrn"),
    RESHAPED: dict(reshape="ih hh"),
    "w_ih " + RESHAPED: dict(reshape="ih"),
    "w_hh " + RESHAPED: dict(reshape="hh"),
    "a bias given alone (the other None) was ignored: add b_ih and b_hh each when it is not None": dict(drop_lone_bias=True),
}
TRANSPOSED = "the output is (H, B), transposed: compute x @ w_ih.T so the batch dim stays first"


def cell_variants(step, mistakes, args, pick=None):
    pick_ = (lambda r: r) if pick is None else (lambda r: r[pick])
    return {cause: (lambda kw=kw: pick_(step(*args, **kw))) for cause, kw in mistakes.items()}


def run_layer(step, x, state, w, *, zero_init=False, final="last", **kw):
    """Loop a (wrong) step over time: returns (out, final state), the state a tuple for the LSTM."""
    state = tuple(torch.zeros_like(s) for s in state) if zero_init else state
    outs, states = [], []
    for t in range(x.shape[1]):
        new = step(x[:, t], *state, *w, **kw)
        state = new if isinstance(new, tuple) else (new,)
        outs.append(state[0])
        states.append(state)
    return torch.stack(outs, 1), states[0 if final == "first" else -1]


def layer_variants(step, mistakes, x, state, w, pick):
    """Variants of out (pick=None) or of final state number `pick`."""
    def build(**kw):
        out, fin = run_layer(step, x, state, w, **kw)
        return out if pick is None else fin[pick]
    v = {cause: (lambda kw=kw: build(**kw)) for cause, kw in mistakes.items()}
    v["the initial state was ignored (started from zeros): start the loop from h0 (and c0)"] = lambda: build(zero_init=True)
    if pick is not None:
        v["the final state was taken from the FIRST step; it is the state after the last step, out[:, -1]"] = \
            lambda: build(final="first")
    return v


DETACHED = ("the state was detached between steps (h.detach()), which cuts backpropagation through time: "
            "carry h (and c) from step to step as they are")


def detached_grads(step, x, state, w, g_out, g_last=None):
    """Gradients of a layer whose carried state is detached at every step (a wrong variant)."""
    leaves = [None if t is None else t.detach().clone().requires_grad_() for t in (x, *state, *w)]
    xs, st, ws = leaves[0], tuple(leaves[1:1 + len(state)]), leaves[1 + len(state):]
    outs = []
    for t in range(x.shape[1]):
        new = step(xs[:, t], *(s.detach() for s in st), *ws)
        st = new if isinstance(new, tuple) else (new,)
        outs.append(st[0])
    loss = (torch.stack(outs, 1) * g_out).sum() + (0 if g_last is None else (st[0] * g_last).sum())
    loss.backward()
    return [None if leaf is None else leaf.grad for leaf in leaves]


GRAD_DIMS = {"x": "BD", "h": "BH", "c": "BH", "h0": "BH", "c0": "BH"}


def assert_grad(got, want, name, variants=None):
    """Compare the .grad of an input the submission received with the built-in's."""
    if got.grad is None:
        raise AssertionError(f"{name}: no gradient reached this input (its .grad is None): the outputs do not "
                             "depend on it through autograd (a .detach(), torch.no_grad(), .item() or .tolist())")
    wrt = name.rsplit(" ", 1)[-1]
    dims = "BTD" if wrt == "x" and got.grad.dim() == 3 else GRAD_DIMS.get(wrt)
    assert_close(got.grad, want.grad, name, dims=dims, variants=variants)


def state_dim_variant(want):
    return {"the state keeps nn.LSTM's / nn.GRU's leading layer dim (1, B, H); the contract returns (B, H)":
            lambda: want[None]}


# -- cells -------------------------------------------------------------------------

CELL_SHAPES = {"B=3,D=5,H=4": (3, 5, 4), "B=1,D=1,H=1": (1, 1, 1), "B=4,D=2,H=6": (4, 2, 6), "B=1,D=7,H=3": (1, 7, 3)}
ONE_BIAS = {"no biases": "none", "b_ih only (b_hh=None)": "b_ih", "b_hh only (b_ih=None)": "b_hh"}


def check_lstm_cell(impl, B, D, H, bias="both", dtype=f64, what=""):
    x, h, c = rand(B, D, dtype=dtype), rand(B, H, dtype=dtype), rand(B, H, dtype=dtype)
    w = weights(4, D, H, bias, dtype)
    want_h, want_c = module("LSTMCell", w, dtype)(x, (h, c))
    got = impl.lstm_cell(x, h, c, *w)
    assert isinstance(got, (tuple, list)) and len(got) == 2, \
        f"lstm_cell{what} must return a pair (h_new, c_new), got {type(got).__name__}"
    args = (x, h, c, *w)
    assert_close(got[0], want_h, f"lstm_cell h_new{what}", dims="BH",
                 variants={**cell_variants(lstm_step, LSTM_MISTAKES, args, 0), TRANSPOSED: lambda: want_h.T})
    assert_close(got[1], want_c, f"lstm_cell c_new{what}", dims="BH",
                 variants={**cell_variants(lstm_step, LSTM_MISTAKES, args, 1), TRANSPOSED: lambda: want_c.T})


def check_gru_cell(impl, B, D, H, bias="both", dtype=f64, what=""):
    x, h = rand(B, D, dtype=dtype), rand(B, H, dtype=dtype)
    w = weights(3, D, H, bias, dtype)
    want = module("GRUCell", w, dtype)(x, h)
    assert_close(impl.gru_cell(x, h, *w), want, f"gru_cell h_new{what}", dims="BH",
                 variants={**cell_variants(gru_step, GRU_MISTAKES, (x, h, *w)), TRANSPOSED: lambda: want.T})


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("shape", CELL_SHAPES)
def test_lstm_cell_matches_nn_lstmcell(impl, shape):
    check_lstm_cell(impl, *CELL_SHAPES[shape], what=f" ({shape})")


@pytest.mark.points(1)
@pytest.mark.parametrize("bias", ONE_BIAS)
def test_lstm_cell_handles_missing_biases(impl, bias):
    check_lstm_cell(impl, 2, 3, 4, ONE_BIAS[bias], what=f" with {bias}")


@pytest.mark.points(1)
def test_lstm_cell_in_float32_matches_and_stays_float32(impl):
    check_lstm_cell(impl, 3, 5, 4, dtype=f32, what=" in float32")


@pytest.mark.points(3)
def test_lstm_cell_gradients_match_autograd_through_nn_lstmcell(impl):
    x, h, c = rand(3, 5, grad=True), rand(3, 4, grad=True), rand(3, 4, grad=True)
    w = weights(4, 5, 4, grad=True)
    gh, gc = rand(3, 4), rand(3, 4)
    res = impl.call("lstm_cell", x, h, c, *w, grad_outputs=(gh, gc))
    m = module("LSTMCell", w)
    torch.autograd.backward(m(x, (h, c)), (gh, gc))
    for name, got, want in zip(("x", "h", "c", "w_ih", "w_hh", "b_ih", "b_hh"), res.args, [x, h, c, *module_params(m)]):
        assert_grad(got, want, f"d (h_new, c_new) / d {name}")


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("shape", CELL_SHAPES)
def test_gru_cell_matches_nn_grucell(impl, shape):
    check_gru_cell(impl, *CELL_SHAPES[shape], what=f" ({shape})")


@pytest.mark.points(1)
@pytest.mark.parametrize("bias", ONE_BIAS)
def test_gru_cell_handles_missing_biases(impl, bias):
    check_gru_cell(impl, 2, 3, 4, ONE_BIAS[bias], what=f" with {bias}")


@pytest.mark.points(1)
def test_gru_cell_in_float32_matches_and_stays_float32(impl):
    check_gru_cell(impl, 3, 5, 4, dtype=f32, what=" in float32")


@pytest.mark.points(3)
def test_gru_cell_gradients_match_autograd_through_nn_grucell(impl):
    x, h = rand(3, 5, grad=True), rand(3, 4, grad=True)
    w = weights(3, 5, 4, grad=True)
    g = rand(3, 4)
    res = impl.call("gru_cell", x, h, *w, grad_outputs=g)
    m = module("GRUCell", w)
    m(x, h).backward(g)
    for name, got, want in zip(("x", "h", "w_ih", "w_hh", "b_ih", "b_hh"), res.args, [x, h, *module_params(m)]):
        assert_grad(got, want, f"d h_new / d {name}")


# -- layers ------------------------------------------------------------------------

LAYER_CASES = {
    "B=2,T=5,D=3,H=4": (2, 5, 3, 4, "both"),
    "B=1,T=1,D=2,H=3": (1, 1, 2, 3, "both"),
    "B=3,T=4,D=1,H=1": (3, 4, 1, 1, "both"),
    "B=2,T=6,D=5,H=2,no biases": (2, 6, 5, 2, "none"),
    "B=2,T=3,D=4,H=3,b_hh only": (2, 3, 4, 3, "b_hh"),
}


def check_lstm_layer(impl, B, T, D, H, bias="both", dtype=f64, what=""):
    x, h0, c0 = rand(B, T, D, dtype=dtype), rand(B, H, dtype=dtype), rand(B, H, dtype=dtype)
    w = weights(4, D, H, bias, dtype)
    want_out, (want_h, want_c) = module("LSTM", w, dtype)(x, (h0[None], c0[None]))
    want_h, want_c = want_h[0], want_c[0]
    got = impl.lstm_layer(x, h0, c0, *w)
    assert isinstance(got, (tuple, list)) and len(got) == 2 and isinstance(got[1], (tuple, list)) \
        and len(got[1]) == 2, f"lstm_layer{what} must return (out, (h_T, c_T))"
    out, (h_T, c_T) = got
    assert_close(out, want_out, f"lstm_layer out{what}", dims="BTH",
                 variants=layer_variants(lstm_step, LSTM_MISTAKES, x, (h0, c0), w, None))
    assert_close(h_T, want_h, f"lstm_layer h_T{what}", dims="BH",
                 variants={**state_dim_variant(want_h), **layer_variants(lstm_step, LSTM_MISTAKES, x, (h0, c0), w, 0)})
    assert_close(c_T, want_c, f"lstm_layer c_T{what}", dims="BH",
                 variants={**state_dim_variant(want_c), **layer_variants(lstm_step, LSTM_MISTAKES, x, (h0, c0), w, 1)})


def check_gru_layer(impl, B, T, D, H, bias="both", dtype=f64, what=""):
    x, h0 = rand(B, T, D, dtype=dtype), rand(B, H, dtype=dtype)
    w = weights(3, D, H, bias, dtype)
    want_out, want_h = module("GRU", w, dtype)(x, h0[None])
    want_h = want_h[0]
    got = impl.gru_layer(x, h0, *w)
    assert isinstance(got, (tuple, list)) and len(got) == 2, f"gru_layer{what} must return (out, h_T)"
    assert_close(got[0], want_out, f"gru_layer out{what}", dims="BTH",
                 variants=layer_variants(gru_step, GRU_MISTAKES, x, (h0,), w, None))
    assert_close(got[1], want_h, f"gru_layer h_T{what}", dims="BH",
                 variants={**state_dim_variant(want_h), **layer_variants(gru_step, GRU_MISTAKES, x, (h0,), w, 0)})


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", LAYER_CASES)
def test_lstm_layer_matches_one_layer_nn_lstm_including_final_states(impl, case):
    check_lstm_layer(impl, *LAYER_CASES[case], what=f" ({case})")


@pytest.mark.points(1)
def test_lstm_layer_in_float32_matches_and_stays_float32(impl):
    check_lstm_layer(impl, 2, 6, 3, 5, dtype=f32, what=" in float32")


@pytest.mark.points(3)
def test_lstm_layer_gradients_match_autograd_through_nn_lstm(impl):
    # Gradient flows in through `out` and both final states, so a detached c_T is caught.
    x, h0, c0 = rand(2, 4, 3, grad=True), rand(2, 5, grad=True), rand(2, 5, grad=True)
    w = weights(4, 3, 5, grad=True)
    g, g_h, g_c = rand(2, 4, 5), rand(2, 5), rand(2, 5)
    res = impl.call("lstm_layer", x, h0, c0, *w, grad_outputs=(g, (g_h, g_c)))
    m = module("LSTM", w)
    out, (h_T, c_T) = m(x, (h0[None], c0[None]))
    torch.autograd.backward([out, h_T[0], c_T[0]], [g, g_h, g_c])
    detached = lambda: detached_grads(lstm_step, x, (h0, c0), w, g)  # noqa: E731
    for k, (name, got, want) in enumerate(zip(("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh"), res.args,
                                              [x, h0, c0, *module_params(m)])):
        assert_grad(got, want, f"d out / d {name}", variants={DETACHED: lambda k=k: detached()[k]})


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", LAYER_CASES)
def test_gru_layer_matches_one_layer_nn_gru_including_final_state(impl, case):
    check_gru_layer(impl, *LAYER_CASES[case], what=f" ({case})")


@pytest.mark.points(1)
def test_gru_layer_in_float32_matches_and_stays_float32(impl):
    check_gru_layer(impl, 2, 6, 3, 5, dtype=f32, what=" in float32")


@pytest.mark.points(3)
def test_gru_layer_gradients_match_autograd_through_nn_gru(impl):
    x, h0 = rand(2, 4, 3, grad=True), rand(2, 5, grad=True)
    w = weights(3, 3, 5, grad=True)
    g_out, g_h = rand(2, 4, 5), rand(2, 5)
    res = impl.call("gru_layer", x, h0, *w, grad_outputs=(g_out, g_h))
    m = module("GRU", w)
    out, h_T = m(x, h0[None])
    torch.autograd.backward((out, h_T[0]), (g_out, g_h))
    detached = lambda: detached_grads(gru_step, x, (h0,), w, g_out, g_h)  # noqa: E731
    for k, (name, got, want) in enumerate(zip(("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"), res.args,
                                              [x, h0, *module_params(m)])):
        assert_grad(got, want, f"d (out, h_T) / d {name}", variants={DETACHED: lambda k=k: detached()[k]})


# -- parameter counts --------------------------------------------------------------

SIZES = [(1, 1), (3, 5), (5, 3), (10, 20), (128, 256), (300, 1), (1, 64)]


def count(G, D, H, n_bias=2):
    return G * (D * H + H * H) + n_bias * G * H


def check_count(impl, fn, kind, G, bias):
    for D, H in SIZES:
        want = sum(p.numel() for p in getattr(nn, kind)(D, H, bias=bias, device="meta").parameters())
        got = getattr(impl, fn)(D, H, bias=bias)
        name = f"{fn}({D}, {H}, bias={bias})"
        if not isinstance(got, int) or isinstance(got, bool):
            raise AssertionError(f"{name}: expected a plain int, got {type(got).__name__} {got!r}")
        other = 7 - G
        variants = {
            f"one bias vector counted: nn.{kind} has two, b_ih and b_hh ({G}H each)": count(G, D, H, n_bias=1),
            f"biases left out (the notes' {G} (D H + H H)): nn.{kind} adds two bias vectors of {G}H each":
                count(G, D, H, n_bias=0),
            f"bias=False ignored: without biases the count is {G} (D H + H H)": count(G, D, H),
            f"{other} gates counted; nn.{kind} stacks {G} (LSTM: i, f, g, o; GRU: r, z, n)":
                count(other, D, H, n_bias=2 if bias else 0),
            "w_hh counted as (G*H, D); it is (G*H, H)": G * 2 * D * H + (2 * G * H if bias else 0),
        }
        cause = next((c for c, v in variants.items() if v == got != want), None)
        try:
            assert_equal(got, want, name)
        except AssertionError as exc:
            raise AssertionError(f"{exc}" + (f"; likely cause: {cause}" if cause else "")) from None


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("bias", [True, False], ids=["bias=True", "bias=False"])
def test_lstm_num_params_equals_nn_lstm_parameter_count(impl, bias):
    check_count(impl, "lstm_num_params", "LSTM", 4, bias)


@pytest.mark.points(1)
@pytest.mark.parametrize("bias", [True, False], ids=["bias=True", "bias=False"])
def test_gru_num_params_equals_nn_gru_parameter_count(impl, bias):
    check_count(impl, "gru_num_params", "GRU", 3, bias)
