# Exercise stub: fill in each function, then run `seqlings check bptt`.
"""A vanilla tanh RNN and backpropagation through time (BPTT), by hand.

Recurrence (Elman 1990; the nonlinearity="tanh" case of ``torch.nn.RNN``, with
the weights stored as ``(in, out)`` so a step reads ``x_t @ w_xh``):

    h_t = tanh(x_t @ w_xh + h_{t-1} @ w_hh + b)

The backward pass computes exactly what ``torch.autograd`` computes for this
loop (https://pytorch.org/docs/stable/notes/autograd.html), without using it.
Truncated BPTT cuts the graph the way ``h = h.detach()`` does every k steps
(Williams and Peng 1990). Why gradients vanish or explode: Pascanu, Mikolov
and Bengio 2013, "On the difficulty of training recurrent neural networks".

Shapes: B batch, T time, D input, H hidden.
"""

from __future__ import annotations

import torch


def rnn_forward(x: torch.Tensor, h0: torch.Tensor, w_xh: torch.Tensor, w_hh: torch.Tensor,
                b: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Run h_t = tanh(x_t @ w_xh + h_{t-1} @ w_hh + b) for t = 1..T.

    x (B, T, D), h0 (B, H), w_xh (D, H), w_hh (H, H), b (H,).
    Returns ``hs`` (B, T, H) holding h_1 .. h_T (not h0), and a ``cache``:
    whatever ``rnn_backward`` and ``grad_norms_through_time`` need. The cache
    is opaque: callers only pass it back.
    """
    # TODO: loop over t with h = tanh(x[:, t] @ w_xh + h @ w_hh + b), keep every new h
    #       and stack them along dim=1; return them with a cache of what the backward
    #       pass needs.
    # Shapes: x (B, T, D), h0 (B, H) -> hs (B, T, H), cache
    raise NotImplementedError


def rnn_backward(dhs: torch.Tensor, cache: dict, truncate: int | None = None) -> dict[str, torch.Tensor]:
    """Gradients of L = sum(hs * dhs) with respect to x, h0, w_xh, w_hh and b, by hand.

    dhs (B, T, H): dL/dh_t from outside the recurrence (e.g. from a loss on
    every step). Returns a dict with ``dx`` (B, T, D), ``dh0`` (B, H),
    ``dw_xh`` (D, H), ``dw_hh`` (H, H), ``db`` (H,).

    ``truncate=k`` gives chunked truncated BPTT: the gradient autograd computes
    when the forward loop runs ``h = h.detach()`` before every step t > 0 with
    t % k == 0 (0-based). The detached h still feeds step t; only the
    gradient stops there.
    """
    # TODO: walk t from T-1 down to 0: dh = dhs[:, t] + what step t+1 sent back, da = dh
    #       * (1 - h_t^2), accumulate dx, dw_xh, dw_hh, db, send da @ w_hh.T back, and
    #       send nothing where the forward loop would detach.
    # Shapes: dhs (B, T, H) -> dx (B, T, D), dh0 (B, H), dw_xh (D, H), dw_hh (H, H), db (H,)
    raise NotImplementedError


def grad_norms_through_time(cache: dict, dh_last: torch.Tensor) -> torch.Tensor:
    """How much of the last step's gradient reaches each earlier hidden state.

    With L = sum(h_T * dh_last), dh_last (B, H), returns norms (T,) where
    entry t is the Frobenius norm over (B, H) of dL/dh_{t+1}; the last entry
    is ||dh_last||. Each step back multiplies by the Jacobian
    dh_t/dh_{t-1} = diag(1 - h_t^2) w_hh.T, so the norms shrink or grow
    roughly geometrically: they vanish when the largest singular value of
    w_hh is below 1, and may (not must) explode when it is above 1.
    """
    # TODO: from g = dh_last, step back through each Jacobian diag(1 - h^2) w_hh.T,
    #       recording the Frobenius norm of g at every step; entry t belongs to h_{t+1}.
    # Shapes: dh_last (B, H) -> norms (T,)
    raise NotImplementedError
