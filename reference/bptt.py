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
    B, T, D = x.shape
    H = w_hh.shape[0]
    assert h0.shape == (B, H), f"h0 has shape {tuple(h0.shape)}, expected (B, H) = {(B, H)}"
    assert w_xh.shape == (D, H), f"w_xh has shape {tuple(w_xh.shape)}, expected (D, H) = {(D, H)}"
    assert w_hh.shape == (H, H), f"w_hh has shape {tuple(w_hh.shape)}, expected (H, H)"
    assert b.shape == (H,), f"b has shape {tuple(b.shape)}, expected (H,) = {(H,)}"
    h = h0
    steps = []
    for t in range(T):
        # (B, D) @ (D, H) + (B, H) @ (H, H) + (H,) -> (B, H)
        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b)
        steps.append(h)
    hs = torch.stack(steps, dim=1)  # (B, T, H)
    # tanh'(a_t) = 1 - h_t^2, so the outputs are all the backward pass needs
    # besides the inputs: no pre-activations are stored.
    cache = {"x": x, "h0": h0, "w_xh": w_xh, "w_hh": w_hh, "hs": hs}
    return hs, cache


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
    x, h0, w_xh, w_hh, hs = cache["x"], cache["h0"], cache["w_xh"], cache["w_hh"], cache["hs"]
    B, T, H = hs.shape
    assert dhs.shape == hs.shape, f"dhs has shape {tuple(dhs.shape)}, expected (B, T, H) = {tuple(hs.shape)}"
    dw_xh = torch.zeros_like(w_xh)  # (D, H)
    dw_hh = torch.zeros_like(w_hh)  # (H, H)
    db = hs.new_zeros(H)  # (H,)
    dxs = []
    # dL/dh_t arriving from step t+1 through the recurrence; nothing comes after step T.
    dh_next = torch.zeros_like(h0)  # (B, H)
    # Step t (0-based, as in the contract's loop) reads h_prev and writes hs[:, t].
    for t in reversed(range(T)):
        h_prev = hs[:, t - 1] if t > 0 else h0  # (B, H)
        # hs[:, t] feeds the loss directly and step t+1 through w_hh: add both paths.
        dh = dhs[:, t] + dh_next  # (B, H)
        # Through the tanh: tanh'(a) = 1 - tanh(a)^2 = 1 - hs[:, t]^2, this step's OUTPUT, not h_prev.
        da = dh * (1 - hs[:, t] ** 2)  # (B, H)
        # (B, H) @ (H, D) -> (B, D)
        dxs.append(da @ w_xh.T)
        # Weights are shared by every step: their gradients sum over time and batch.
        dw_xh = dw_xh + x[:, t].T @ da  # (D, B) @ (B, H) -> (D, H)
        dw_hh = dw_hh + h_prev.T @ da  # (H, B) @ (B, H) -> (H, H)
        db = db + da.sum(dim=0)  # (H,)
        # a = ... + h_prev @ w_hh, so dL/dh_prev = da @ w_hh.T: (B, H) @ (H, H) -> (B, H)
        dh_next = da @ w_hh.T
        if truncate and t > 0 and t % truncate == 0:
            # The forward loop detached h_prev before step t: the gradient stops here.
            dh_next = torch.zeros_like(dh_next)
    dx = torch.stack(dxs[::-1], dim=1)  # (B, T, D)
    return {"dx": dx, "dh0": dh_next, "dw_xh": dw_xh, "dw_hh": dw_hh, "db": db}


def grad_norms_through_time(cache: dict, dh_last: torch.Tensor) -> torch.Tensor:
    """How much of the last step's gradient reaches each earlier hidden state.

    With L = sum(h_T * dh_last), dh_last (B, H), returns norms (T,) where
    entry t is the Frobenius norm over (B, H) of dL/dh_{t+1}; the last entry
    is ||dh_last||. Each step back multiplies by the Jacobian
    dh_t/dh_{t-1} = diag(1 - h_t^2) w_hh.T, so the norms shrink or grow
    roughly geometrically: they vanish when the largest singular value of
    w_hh is below 1, and may (not must) explode when it is above 1.
    """
    hs, w_hh = cache["hs"], cache["w_hh"]
    B, T, H = hs.shape
    assert dh_last.shape == (B, H), f"dh_last has shape {tuple(dh_last.shape)}, expected (B, H) = {(B, H)}"
    g = dh_last  # dL/dh_T, (B, H)
    norms = [g.pow(2).sum().sqrt()]
    for t in range(T - 1, 0, -1):
        # One step back: dL/dh_t = (dL/dh_{t+1} * (1 - h_{t+1}^2)) @ w_hh.T, with hs[:, t] = h_{t+1}.
        g = (g * (1 - hs[:, t] * hs[:, t])) @ w_hh.T  # (B, H)
        norms.append(g.pow(2).sum().sqrt())
    return torch.stack(norms[::-1])  # (T,)
