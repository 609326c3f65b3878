# Exercise stub: fill in each function, then run `seqlings check birnn`.
"""Bidirectional LSTM over a padded batch of unequal lengths, written out by hand.

Matches ``torch.nn.LSTM(bidirectional=True, batch_first=True)`` run on
``pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)`` and
unpacked with ``pad_packed_sequence(..., batch_first=True, total_length=T)``:
https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html
https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.pack_padded_sequence.html
Schuster and Paliwal 1997, "Bidirectional Recurrent Neural Networks".

Shapes: B batch, T time (the padded length), D input, H hidden, * any trailing
dims. Sequence b holds its real steps at 0 .. lengths[b]-1, then padding.
The forward direction reads steps 0 -> length-1; the backward direction reads
length-1 -> 0, starting at each sequence's OWN last step, never at the padding.
"""

from __future__ import annotations

import torch


def _lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
               b_ih: torch.Tensor | None, b_hh: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step, equal to ``nn.LSTMCell`` (given: this topic drills direction and lengths, not gates).

    x (B, D), h and c (B, H), w_ih (4H, D), w_hh (4H, H), b_ih and b_hh (4H,) or None,
    gates stacked i, f, g, o as PyTorch does -> (h_new, c_new), each (B, H).
    """
    # (B, D) @ (D, 4H) + (B, H) @ (H, 4H) -> (B, 4H)
    gates = x @ w_ih.T + h @ w_hh.T
    if b_ih is not None:
        gates = gates + b_ih
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, dim=-1)  # 4 x (B, H)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_new = torch.sigmoid(o) * torch.tanh(c_new)
    return h_new, c_new


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its own length; padded steps stay where they are, untouched.

    x (B, T, *) of any dtype (floats, or integer token ids), lengths (B,) int64 with
    1 <= length <= T -> (B, T, *) of x's dtype and device:
    ``out[b, t] = x[b, lengths[b] - 1 - t]`` for ``t < lengths[b]``, and ``out[b, t] = x[b, t]``
    at the padding. Reversing twice gives x back. Gradients flow back to x.
    """
    # TODO: in each row, step t < length reads step length-1-t and a padded step keeps
    #       its own value (x.flip(1) would move the pads to the front).
    # Shapes: x (B, T, *), lengths (B,) -> (B, T, *)
    raise NotImplementedError


def bidirectional_lstm(x: torch.Tensor, lengths: torch.Tensor, fwd: tuple, bwd: tuple
                       ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """A one-layer bidirectional LSTM over a padded batch, equal to nn.LSTM on a packed sequence.

    x (B, T, D); lengths (B,) int64 in any order, 1 <= length <= T; ``fwd`` and ``bwd`` each
    ``(w_ih (4H, D), w_hh (4H, H), b_ih (4H,), b_hh (4H,))`` in nn.LSTM layout (gates i, f, g, o),
    for the forward and the backward direction; both start from a zero state.
    Returns ``out (B, T, 2H)`` = [forward ; backward] at each step, exactly 0 at padded steps,
    and ``(h_n, c_n)``, each (2, B, H): index 0 is the forward state at step length-1,
    index 1 the backward state at step 0 (where the backward direction ends).
    """
    # TODO: run the forward direction from zeros with _lstm_cell, holding the state
    #       still and outputting 0 at padded steps; run the backward direction the same
    #       way on reverse_padded(x) and reverse its outputs back; concatenate [forward
    #       ; backward] and stack the final states.
    # Shapes: x (B, T, D), lengths (B,) -> out (B, T, 2H), (h_n (2, B, H), c_n (2, B, H))
    raise NotImplementedError
