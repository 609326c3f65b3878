"""LSTM and GRU cells and layers, written out by hand.

Matches ``torch.nn.LSTMCell`` / ``torch.nn.GRUCell`` and one-layer ``torch.nn.LSTM`` /
``torch.nn.GRU(batch_first=True)``, with their weight layout and gate order:
https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html
https://pytorch.org/docs/stable/generated/torch.nn.GRU.html
Hochreiter and Schmidhuber 1997 (LSTM); Cho et al. 2014 (GRU), with the
reset gate placed as cuDNN and PyTorch place it (see ``gru_cell``).

Shapes: B batch, T time, D input size, H hidden size, G gates stacked in the
weights (G=4 for the LSTM: i, f, g, o; G=3 for the GRU: r, z, n).
Weights follow nn.Linear: ``w_ih (G*H, D)`` is applied as ``x @ w_ih.T``.
"""

from __future__ import annotations

import torch


def lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
              b_ih: torch.Tensor | None = None, b_hh: torch.Tensor | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step; equals ``nn.LSTMCell`` with these weights.

    x (B, D), h and c (B, H), w_ih (4H, D), w_hh (4H, H), b_ih and b_hh (4H,)
    or None (each one independently). The rows of the weights are stacked in
    PyTorch's gate order i, f, g, o:
        i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)   input gate
        f = sigmoid(W_if x + b_if + W_hf h + b_hf)   forget gate
        g = tanh(W_ig x + b_ig + W_hg h + b_hg)      candidate cell content
        o = sigmoid(W_io x + b_io + W_ho h + b_ho)   output gate
        c' = f * c + i * g
        h' = o * tanh(c')
    Returns (h_new, c_new), both (B, H).
    """
    B, D = x.shape
    H = h.shape[1]
    assert w_ih.shape == (4 * H, D), f"w_ih must be (4H, D) = {(4 * H, D)}, got {tuple(w_ih.shape)}"
    assert w_hh.shape == (4 * H, H), f"w_hh must be (4H, H) = {(4 * H, H)}, got {tuple(w_hh.shape)}"
    # All four gates in one product each: (B, D) @ (D, 4H) + (B, H) @ (H, 4H) -> (B, 4H)
    gates = x @ w_ih.T + h @ w_hh.T
    # The two biases are separate parameters (cuDNN keeps both); either may be absent.
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    # PyTorch stacks the gate blocks as i, f, g, o.
    i, f, g, o = gates.chunk(4, dim=1)  # 4 x (B, H)
    # Gates are sigmoids (0 = block, 1 = pass); the candidate is a tanh, centred on 0.
    i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
    g = torch.tanh(g)
    # Additive cell update: d c_new / d c = f, the gradient highway through time.
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    return h_new, c_new


def gru_cell(x: torch.Tensor, h: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
             b_ih: torch.Tensor | None = None, b_hh: torch.Tensor | None = None) -> torch.Tensor:
    """One GRU step; equals ``nn.GRUCell`` with these weights.

    x (B, D), h (B, H), w_ih (3H, D), w_hh (3H, H), b_ih and b_hh (3H,) or
    None (each one independently). Rows are stacked in PyTorch's order r, z, n:
        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset gate
        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update gate
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))       candidate
        h' = (1 - z) * n + z * h
    The reset gate multiplies the hidden product AFTER the matmul, bias b_hn
    included, as PyTorch and cuDNN do. Cho et al. 2014 (and the course notes)
    reset BEFORE it, n = tanh(W_in x + W_hn (r * h) + b): a different function.
    z = 1 keeps the old state, z = 0 takes the candidate.
    Returns h_new (B, H).
    """
    B, D = x.shape
    H = h.shape[1]
    assert w_ih.shape == (3 * H, D), f"w_ih must be (3H, D) = {(3 * H, D)}, got {tuple(w_ih.shape)}"
    assert w_hh.shape == (3 * H, H), f"w_hh must be (3H, H) = {(3 * H, H)}, got {tuple(w_hh.shape)}"
    # Input and hidden products stay apart: the reset gate scales only the hidden one.
    gi = x @ w_ih.T  # (B, D) @ (D, 3H) -> (B, 3H)
    gh = h @ w_hh.T  # (B, H) @ (H, 3H) -> (B, 3H)
    if b_ih is not None:
        gi = gi + b_ih
    if b_hh is not None:
        gh = gh + b_hh
    i_r, i_z, i_n = gi.chunk(3, dim=1)  # 3 x (B, H)
    h_r, h_z, h_n = gh.chunk(3, dim=1)  # 3 x (B, H)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    # Reset after the matmul: r scales W_hn h + b_hn, so one product serves all three gates.
    n = torch.tanh(i_n + r * h_n)
    # Interpolate: z is the share of the OLD state that is kept.
    return (1 - z) * n + z * h


def lstm_layer(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
               b_ih: torch.Tensor | None = None, b_hh: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Run ``lstm_cell`` over time; equals a one-layer ``nn.LSTM(batch_first=True)``.

    x (B, T, D), h0 and c0 (B, H), weights as in ``lstm_cell``.
    Returns (out, (h_T, c_T)): out (B, T, H) holds h_1 .. h_T, and h_T, c_T
    (B, H) are the states after the LAST step (no leading layer dim, unlike
    nn.LSTM's (1, B, H)).
    """
    B, T, D = x.shape
    assert h0.shape == c0.shape and h0.shape[0] == B, \
        f"h0 and c0 must both be (B, H) with B={B}, got {tuple(h0.shape)} and {tuple(c0.shape)}"
    h, c = h0, c0
    hs = []
    # The recurrence is sequential: step t needs the state of step t-1. unbind, not x[:, t]:
    # the backward of T slices would build T full (B, T, D) gradients, quadratic in T.
    for x_t in x.unbind(1):  # T x (B, D)
        h, c = lstm_cell(x_t, h, c, w_ih, w_hh, b_ih, b_hh)  # (B, H), (B, H)
        hs.append(h)
    out = torch.stack(hs, dim=1)  # T x (B, H) -> (B, T, H)
    return out, (h, c)


def gru_layer(x: torch.Tensor, h0: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
              b_ih: torch.Tensor | None = None, b_hh: torch.Tensor | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``gru_cell`` over time; equals a one-layer ``nn.GRU(batch_first=True)``.

    x (B, T, D), h0 (B, H), weights as in ``gru_cell``.
    Returns (out, h_T): out (B, T, H) holds h_1 .. h_T; h_T (B, H) is the
    state after the LAST step (no leading layer dim, unlike nn.GRU's (1, B, H)).
    """
    B, T, D = x.shape
    assert h0.shape[0] == B, f"h0 must be (B, H) with B={B}, got {tuple(h0.shape)}"
    h = h0
    hs = []
    for x_t in x.unbind(1):  # T x (B, D), as in lstm_layer
        h = gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh)  # (B, H)
        hs.append(h)
    out = torch.stack(hs, dim=1)  # T x (B, H) -> (B, T, H)
    return out, h


def _num_params(G: int, input_size: int, hidden_size: int, bias: bool) -> int:
    """Parameters of a one-layer, one-direction recurrent layer with G gates."""
    D, H = input_size, hidden_size
    weights = G * H * D + G * H * H  # w_ih (GH, D) and w_hh (GH, H)
    # Two bias vectors, b_ih and b_hh (GH,) each: PyTorch keeps both, though their sum would do.
    biases = 2 * G * H if bias else 0
    return weights + biases


def lstm_num_params(input_size: int, hidden_size: int, bias: bool = True) -> int:
    """Parameter count of ``nn.LSTM(input_size, hidden_size, bias=bias)`` (one layer, one direction).

    4 (D H + H H + 2 H) with biases: BOTH bias vectors b_ih and b_hh count.
    The textbook 4 (D H + H H) leaves the biases out; it is the count for bias=False.
    Returns a plain int.
    """
    return _num_params(4, input_size, hidden_size, bias)


def gru_num_params(input_size: int, hidden_size: int, bias: bool = True) -> int:
    """Parameter count of ``nn.GRU(input_size, hidden_size, bias=bias)`` (one layer, one direction).

    3 (D H + H H + 2 H) with biases (both b_ih and b_hh), 3 (D H + H H) without:
    exactly 3/4 of the LSTM's count either way. Returns a plain int.
    """
    return _num_params(3, input_size, hidden_size, bias)
