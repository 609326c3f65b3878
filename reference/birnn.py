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
    B, T = x.shape[0], x.shape[1]
    lengths = lengths.to(x.device)
    assert lengths.shape == (B,), f"lengths must have shape (B,) = ({B},), got {tuple(lengths.shape)}"
    assert bool(((lengths >= 1) & (lengths <= T)).all()), f"every length must be in 1..T={T}, got {lengths.tolist()}"
    t = torch.arange(T, device=x.device)[None, :]  # (1, T)
    n = lengths[:, None]  # (B, 1)
    # Real step t reads step n-1-t; a pad reads itself. (x.flip(1) would move the pads to the front.)
    src = torch.where(t < n, n - 1 - t, t)  # (B, T)
    rows = torch.arange(B, device=x.device)[:, None]  # (B, 1)
    # Pair row b with its own source steps (advanced indexing keeps the trailing dims).
    return x[rows, src]  # (B, T, *)


def _run_direction(x: torch.Tensor, mask: torch.Tensor, weights: tuple, h0: torch.Tensor,
                   c0: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Run one LSTM direction left to right over x (B, T, D), holding the state still at padded steps.

    mask (B, T) bool, True at real steps -> out (B, T, H), zero at the padding, and the final
    (h, c), each (B, H): the state after each sequence's last real step.
    """
    h, c = h0, c0
    outs = []
    # unbind, not x[:, t]: the backward of T slices would build T full (B, T, D) gradients.
    for t, x_t in enumerate(x.unbind(1)):  # T x (B, D)
        h_new, c_new = _lstm_cell(x_t, h, c, *weights)  # (B, H) each
        real = mask[:, t, None]  # (B, 1)
        # Past a sequence's end its state must not move, so the final state is the last real one.
        h = torch.where(real, h_new, h)
        c = torch.where(real, c_new, c)
        outs.append(torch.where(real, h_new, 0.0))  # pad_packed_sequence fills the padding with 0
    return torch.stack(outs, dim=1), (h, c)  # (B, T, H), ((B, H), (B, H))


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
    B, T, D = x.shape
    H = fwd[1].shape[1]  # w_hh is (4H, H)
    lengths = lengths.to(x.device)
    mask = torch.arange(T, device=x.device)[None, :] < lengths[:, None]  # (B, T), True at real steps
    h0 = x.new_zeros(B, H)  # both directions start from zero, as nn.LSTM does without (h0, c0)
    out_f, (h_f, c_f) = _run_direction(x, mask, fwd, h0, h0)  # (B, T, H)
    # Reverse each sequence within its length: its last real step comes first and the padding
    # stays at the end, so the same left-to-right loop with the same mask runs it backwards.
    x_rev = reverse_padded(x, lengths)  # (B, T, D)
    out_rev, (h_b, c_b) = _run_direction(x_rev, mask, bwd, h0, h0)  # (B, T, H)
    # Step t of the reversed run is the sequence's step length-1-t: put it back in place.
    out_b = reverse_padded(out_rev, lengths)  # (B, T, H)
    out = torch.cat([out_f, out_b], dim=-1)  # (B, T, 2H)
    # The reversed run ends at the sequence's step 0, so (h_b, c_b) is the state there.
    h_n = torch.stack([h_f, h_b])  # (2, B, H)
    c_n = torch.stack([c_f, c_b])  # (2, B, H)
    return out, (h_n, c_n)
