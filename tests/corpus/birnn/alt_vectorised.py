"""A correct birnn that never reverses: the backward direction walks t = T-1 .. 0 over the padded batch.

Before a sequence's last real step the backward state is still zero, so starting every
row at T-1 and updating only where t < length is the same as starting at length-1.
The input projections of all steps are computed at once with einsum; masks are floats.
"""

import torch


def reverse_padded(x, lengths):
    B, T = x.shape[:2]
    lengths = lengths.to(x.device)
    t = torch.arange(T, device=x.device).expand(B, T)
    n = lengths.unsqueeze(1).expand(B, T)
    index = torch.where(t < n, n - 1 - t, t)
    index = index.reshape(B, T, *([1] * (x.dim() - 2))).expand_as(x)
    return torch.gather(x, 1, index)


def _direction(x, mask, w, steps):
    w_ih, w_hh, b_ih, b_hh = w
    B, T, _ = x.shape
    H = w_hh.shape[1]
    pre = torch.einsum("btd,gd->btg", x, w_ih) + b_ih + b_hh  # (B, T, 4H)
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    out = [None] * T
    for t in steps:
        z = pre[:, t] + torch.einsum("bh,gh->bg", h, w_hh)
        i, f, g, o = torch.split(z, H, dim=1)
        c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h_new = o.sigmoid() * c_new.tanh()
        m = mask[:, t].unsqueeze(1)  # (B, 1) float
        h = m * h_new + (1 - m) * h
        c = m * c_new + (1 - m) * c
        out[t] = m * h_new
    return torch.stack(out, dim=1), h, c


def bidirectional_lstm(x, lengths, fwd, bwd):
    B, T, _ = x.shape
    mask = (torch.arange(T, device=x.device) < lengths.to(x.device).unsqueeze(1)).to(x.dtype)
    out_f, h_f, c_f = _direction(x, mask, fwd, range(T))
    out_b, h_b, c_b = _direction(x, mask, bwd, range(T - 1, -1, -1))
    return torch.cat((out_f, out_b), dim=2), (torch.stack((h_f, h_b)), torch.stack((c_f, c_b)))
