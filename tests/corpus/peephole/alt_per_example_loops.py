"""A correct peephole LSTM written per example and per gate: F.linear on row blocks, diagonal peephole matrices."""

import torch
import torch.nn.functional as F


def _one(x, h, c, w_ih, w_hh, b, w_ci, w_cf, w_co):
    """One example: x (D,), h and c (H,)."""
    H = h.shape[0]
    blocks = lambda w: [w[k * H:(k + 1) * H] for k in range(4)]  # noqa: E731
    wx, wh, bb = blocks(w_ih), blocks(w_hh), blocks(b)
    pre = [torch.mv(wx[k], x) + torch.mv(wh[k], h) + bb[k] for k in range(4)]
    i = torch.sigmoid(pre[0] + torch.diag(w_ci) @ c)
    f = torch.sigmoid(pre[1] + torch.diag(w_cf) @ c)
    g = torch.tanh(pre[2])
    c2 = f * c + i * g
    o = torch.sigmoid(pre[3] + torch.diag(w_co) @ c2)
    return o * torch.tanh(c2), c2


def peephole_lstm_cell(x, h, c, w_ih, w_hh, b, w_ci, w_cf, w_co):
    pairs = [_one(x[n], h[n], c[n], w_ih, w_hh, b, w_ci, w_cf, w_co) for n in range(x.shape[0])]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def peephole_lstm_layer(x, h0, c0, w_ih, w_hh, b, w_ci, w_cf, w_co):
    states = [(h0, c0)]
    for t in range(x.shape[1]):
        states.append(peephole_lstm_cell(x[:, t], *states[-1], w_ih, w_hh, b, w_ci, w_cf, w_co))
    out = torch.cat([h.unsqueeze(1) for h, _ in states[1:]], dim=1)
    return out, states[-1]
