# Exercise stub: fill in each function, then run `seqlings check lstm_gru`.
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
    # TODO: one product per weight, add each bias that is not None, split the 4H columns
    #       into i, f, g, o (sigmoid, sigmoid, tanh, sigmoid), then c' = f * c + i * g
    #       and h' = o * tanh(c').
    # Shapes: (B, D) @ (D, 4H) + (B, H) @ (H, 4H) -> (B, 4H) -> 4 x (B, H)
    raise NotImplementedError


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
    # TODO: input and hidden products kept apart, each split into r, z, n; n = tanh(i_n
    #       + r * h_n); h' = (1 - z) * n + z * h.
    # Shapes: gi = (B, D) @ (D, 3H), gh = (B, H) @ (H, 3H) -> (B, 3H) each -> h_new (B, H)
    raise NotImplementedError


def lstm_layer(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
               b_ih: torch.Tensor | None = None, b_hh: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Run ``lstm_cell`` over time; equals a one-layer ``nn.LSTM(batch_first=True)``.

    x (B, T, D), h0 and c0 (B, H), weights as in ``lstm_cell``.
    Returns (out, (h_T, c_T)): out (B, T, H) holds h_1 .. h_T, and h_T, c_T
    (B, H) are the states after the LAST step (no leading layer dim, unlike
    nn.LSTM's (1, B, H)).
    """
    # TODO: run your lstm_cell over t = 0..T-1 from (h0, c0), stack the hidden states
    #       over time, return the state after the last step.
    # Shapes: x (B, T, D) -> out (B, T, H), (h_T (B, H), c_T (B, H))
    raise NotImplementedError


def gru_layer(x: torch.Tensor, h0: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
              b_ih: torch.Tensor | None = None, b_hh: torch.Tensor | None = None,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``gru_cell`` over time; equals a one-layer ``nn.GRU(batch_first=True)``.

    x (B, T, D), h0 (B, H), weights as in ``gru_cell``.
    Returns (out, h_T): out (B, T, H) holds h_1 .. h_T; h_T (B, H) is the
    state after the LAST step (no leading layer dim, unlike nn.GRU's (1, B, H)).
    """
    # TODO: run your gru_cell over t = 0..T-1 from h0, stack the states over time,
    #       return the state after the last step.
    # Shapes: x (B, T, D) -> out (B, T, H), h_T (B, H)
    raise NotImplementedError


def lstm_num_params(input_size: int, hidden_size: int, bias: bool = True) -> int:
    """Parameter count of ``nn.LSTM(input_size, hidden_size, bias=bias)`` (one layer, one direction).

    4 (D H + H H + 2 H) with biases: BOTH bias vectors b_ih and b_hh count.
    The textbook 4 (D H + H H) leaves the biases out; it is the count for bias=False.
    Returns a plain int.
    """
    # TODO: count w_ih and w_hh and, when bias is True, both bias vectors b_ih and b_hh;
    #       return an int.
    # Shapes: D=10, H=20 -> 4 * (10*20 + 20*20 + 2*20) = 2560
    raise NotImplementedError


def gru_num_params(input_size: int, hidden_size: int, bias: bool = True) -> int:
    """Parameter count of ``nn.GRU(input_size, hidden_size, bias=bias)`` (one layer, one direction).

    3 (D H + H H + 2 H) with biases (both b_ih and b_hh), 3 (D H + H H) without:
    exactly 3/4 of the LSTM's count either way. Returns a plain int.
    """
    # TODO: the same count with 3 gate blocks instead of 4; return an int.
    # Shapes: D=10, H=20 -> 3 * (10*20 + 20*20 + 2*20) = 1920
    raise NotImplementedError
