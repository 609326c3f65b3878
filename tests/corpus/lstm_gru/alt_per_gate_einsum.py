"""A correct lstm_gru with one small weight slice per gate, einsum products and F.linear, and a preallocated output."""

import torch
import torch.nn.functional as F


def _split(w, G):
    """(G*H, ...) -> G tensors (H, ...): one block per gate, in PyTorch's row order."""
    return torch.split(w, w.shape[0] // G, dim=0) if w is not None else [None] * G


def _gate(x, h, w_i, w_h, b_i, b_h):
    a = torch.einsum("bd,hd->bh", x, w_i) + torch.einsum("bk,hk->bh", h, w_h)
    for b in (b_i, b_h):
        if b is not None:
            a = a + b
    return a


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    blocks = list(zip(_split(w_ih, 4), _split(w_hh, 4), _split(b_ih, 4), _split(b_hh, 4)))
    i = torch.sigmoid(_gate(x, h, *blocks[0]))
    f = torch.sigmoid(_gate(x, h, *blocks[1]))
    g = torch.tanh(_gate(x, h, *blocks[2]))
    o = torch.sigmoid(_gate(x, h, *blocks[3]))
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    (wir, wiz, win), (whr, whz, whn) = _split(w_ih, 3), _split(w_hh, 3)
    (bir, biz, bin_), (bhr, bhz, bhn) = _split(b_ih, 3), _split(b_hh, 3)
    r = torch.sigmoid(_gate(x, h, wir, whr, bir, bhr))
    z = torch.sigmoid(_gate(x, h, wiz, whz, biz, bhz))
    n = torch.tanh(F.linear(x, win, bin_) + r * F.linear(h, whn, bhn))
    return torch.lerp(n, h, z)  # n + z * (h - n)


def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    B, T, _ = x.shape
    out = x.new_empty(B, T, h0.shape[1])
    h, c = h0, c0
    for t in range(T):
        h, c = lstm_cell(x[:, t, :], h, c, w_ih, w_hh, b_ih, b_hh)
        out[:, t] = h
    return out, (out[:, -1], c)


def gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    B, T, _ = x.shape
    out = torch.zeros(B, T, h0.shape[1], dtype=x.dtype, device=x.device)
    h = h0
    for t in range(T):
        h = gru_cell(x.select(1, t), h, w_ih, w_hh, b_ih, b_hh)
        out[:, t] = h
    return out, out[:, T - 1]


def _count(gates, d, h, bias):
    n = gates * h * (d + h)
    if bias:
        n += gates * h  # b_ih
        n += gates * h  # b_hh
    return int(n)


def lstm_num_params(input_size, hidden_size, bias=True):
    return _count(4, input_size, hidden_size, bias)


def gru_num_params(input_size, hidden_size, bias=True):
    return _count(3, input_size, hidden_size, bias)
