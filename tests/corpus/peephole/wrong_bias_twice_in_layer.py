"""Hoists the input projection out of the time loop with the bias in it, then calls the cell, which adds b again.

Expect: the bias b was added twice per step
"""

import torch


def peephole_lstm_cell(x, h, c, w_ih, w_hh, b, w_ci, w_cf, w_co):
    return _cell_from_input_projection(x @ w_ih.T, h, c, w_hh, b, w_ci, w_cf, w_co)


def _cell_from_input_projection(xz, h, c, w_hh, b, w_ci, w_cf, w_co):
    gates = xz + h @ w_hh.T + b
    zi, zf, zg, zo = gates.chunk(4, -1)
    i = torch.sigmoid(zi + w_ci * c)
    f = torch.sigmoid(zf + w_cf * c)
    c = f * c + i * torch.tanh(zg)
    o = torch.sigmoid(zo + w_co * c)
    return o * torch.tanh(c), c


def peephole_lstm_layer(x, h0, c0, w_ih, w_hh, b, w_ci, w_cf, w_co):
    xz = x @ w_ih.T + b  # (B, T, 4H), computed once for all steps
    h, c = h0, c0
    out = []
    for t in range(x.shape[1]):
        h, c = _cell_from_input_projection(xz[:, t], h, c, w_hh, b, w_ci, w_cf, w_co)
        out.append(h)
    return torch.stack(out, 1), (h, c)
