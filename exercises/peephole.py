# Exercise stub: fill in each function, then run `seqlings check peephole`.
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
    # TODO: compute the four gate pre-activations (rows i, f, g, o), add w_ci * c to i
    #       and w_cf * c to f, update the cell, then let the output gate peek at the NEW
    #       cell (w_co * c_new); h_new = o * tanh(c_new).
    # Shapes: x (B, D), h and c (B, H), w_ih (4H, D), w_hh (4H, H), b (4H,), w_c* (H,) -> h_new, c_new (B, H)
    raise NotImplementedError


def peephole_lstm_layer(x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor,
                        w_ih: torch.Tensor, w_hh: torch.Tensor, b: torch.Tensor,
                        w_ci: torch.Tensor, w_cf: torch.Tensor, w_co: torch.Tensor
                        ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Run the peephole cell over a sequence; returns ``(out, (h_T, c_T))``.

    x (B, T, D), h0 and c0 (B, H), weights as in ``peephole_lstm_cell``.
    out (B, T, H) holds h_1 .. h_T; h_T and c_T (B, H) are the state after the
    last step (no leading layer dim, unlike ``nn.LSTM``'s h_n and c_n).
    """
    # TODO: run the cell over t = 0 .. T-1, carrying (h, c) from step to step; stack the
    #       hidden states along time.
    # Shapes: x (B, T, D), h0 and c0 (B, H) -> out (B, T, H), (h_T, c_T) each (B, H)
    raise NotImplementedError
