"""Peephole LSTM: gates that look at the cell state, written out by hand.

Gers and Schmidhuber 2000, "Recurrent nets that time and count" (IJCNN):
the input and forget gates see the previous cell state c_prev, the output
gate sees the new cell state c. Weights follow ``torch.nn.LSTMCell``
(https://pytorch.org/docs/stable/generated/torch.nn.LSTMCell.html): rows
stacked as gates i, f, g, o, applied as ``x @ W.T``, but with a single bias
``b``. With all peephole vectors zero the cell equals ``nn.LSTMCell`` with
``b_ih = b`` and ``b_hh = 0``.

    i = sigmoid(x W_ii + h W_hi + w_ci * c_prev + b_i)
    f = sigmoid(x W_if + h W_hf + w_cf * c_prev + b_f)
    g = tanh(x W_ig + h W_hg + b_g)
    c = f * c_prev + i * g
    o = sigmoid(x W_io + h W_ho + w_co * c + b_o)
    h = o * tanh(c)

Shapes: B batch, T time, D input size, H hidden size, 4H the four stacked
gates (i, f, g, o).
"""

from __future__ import annotations

import torch


def peephole_lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor,
                       w_ih: torch.Tensor, w_hh: torch.Tensor, b: torch.Tensor,
                       w_ci: torch.Tensor, w_cf: torch.Tensor, w_co: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the peephole LSTM; returns ``(h_new, c_new)``, each (B, H).

    x (B, D), h and c (B, H) the previous state, w_ih (4H, D), w_hh (4H, H),
    b (4H,) with rows stacked as gates i, f, g, o (PyTorch's order), and the
    peephole vectors w_ci, w_cf, w_co (H,). The peepholes are diagonal: each
    unit's gate sees only its own cell, so they multiply elementwise. The
    input and forget gates see the previous cell state, the output gate the
    new one.
    """
    B, D = x.shape
    H = h.shape[-1]
    assert w_ih.shape == (4 * H, D), f"w_ih must be (4H, D) = {(4 * H, D)}, got {tuple(w_ih.shape)}"
    assert w_hh.shape == (4 * H, H), f"w_hh must be (4H, H) = {(4 * H, H)}, got {tuple(w_hh.shape)}"
    assert b.shape == (4 * H,), f"b must be (4H,) = {(4 * H,)}, got {tuple(b.shape)}"
    for name, w in (("w_ci", w_ci), ("w_cf", w_cf), ("w_co", w_co)):
        assert w.shape == (H,), f"{name} must be (H,) = {(H,)}, got {tuple(w.shape)}"

    # All four gates in one product each: (B, D) @ (D, 4H) + (B, H) @ (H, 4H) -> (B, 4H)
    gates = x @ w_ih.T + h @ w_hh.T + b  # (B, 4H)
    pre_i, pre_f, pre_g, pre_o = gates.chunk(4, dim=-1)  # 4 x (B, H), PyTorch's order i, f, g, o

    # Input and forget gates peek at the cell state they are about to change.
    i = torch.sigmoid(pre_i + w_ci * c)  # (B, H)
    f = torch.sigmoid(pre_f + w_cf * c)  # (B, H)
    g = torch.tanh(pre_g)  # the candidate has no peephole
    c_new = f * c + i * g  # (B, H)

    # The output gate decides what to expose of the cell it has just written,
    # so it peeks at c_new, which is why c_new must be computed first.
    o = torch.sigmoid(pre_o + w_co * c_new)  # (B, H)
    h_new = o * torch.tanh(c_new)  # (B, H)
    return h_new, c_new


def peephole_lstm_layer(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor,
                        w_ih: torch.Tensor, w_hh: torch.Tensor, b: torch.Tensor,
                        w_ci: torch.Tensor, w_cf: torch.Tensor, w_co: torch.Tensor
                        ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Run the peephole cell over a sequence; returns ``(out, (h_T, c_T))``.

    x (B, T, D), h0 and c0 (B, H), weights as in ``peephole_lstm_cell``.
    out (B, T, H) holds h_1 .. h_T; h_T and c_T (B, H) are the state after the
    last step (no leading layer dim, unlike ``nn.LSTM``'s h_n and c_n).
    """
    B, T, D = x.shape
    assert T >= 1, f"need at least one time step, got T={T}"
    h, c = h0, c0
    outs = []
    # The recurrence is sequential: step t needs the state from step t-1. unbind, not x[:, t]:
    # the backward of T slices would build T full (B, T, D) gradients, quadratic in T.
    for x_t in x.unbind(1):  # T x (B, D)
        h, c = peephole_lstm_cell(x_t, h, c, w_ih, w_hh, b, w_ci, w_cf, w_co)  # (B, H) each
        outs.append(h)
    out = torch.stack(outs, dim=1)  # T x (B, H) -> (B, T, H)
    return out, (h, c)
