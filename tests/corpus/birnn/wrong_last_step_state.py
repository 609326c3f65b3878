"""Reads h_n off the output at step T-1, as `out[:, -1]` tempts one to: padding for shorter sequences.

Expect: the forward state was read at step T-1, which is padding for sequences shorter than T
"""

import torch


def reverse_padded(x, lengths):
    B, T = x.shape[:2]
    t = torch.arange(T, device=x.device)[None, :]
    n = lengths.to(x.device)[:, None]
    return x[torch.arange(B, device=x.device)[:, None], torch.where(t < n, n - 1 - t, t)]


def _cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    i, f, g, o = (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _run(x, mask, w):
    B, T, _ = x.shape
    H = w[1].shape[1]
    h = c = x.new_zeros(B, H)
    hs, cs = [], []
    for t in range(T):
        h2, c2 = _cell(x[:, t], h, c, *w)
        m = mask[:, t, None]
        h, c = torch.where(m, h2, h), torch.where(m, c2, c)
        hs.append(torch.where(m, h2, 0.0))
        cs.append(torch.where(m, c2, 0.0))
    return torch.stack(hs, 1), torch.stack(cs, 1)


def bidirectional_lstm(x, lengths, fwd, bwd):
    T = x.shape[1]
    mask = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]
    hf, cf = _run(x, mask, fwd)
    hb, cb = _run(reverse_padded(x, lengths), mask, bwd)
    hb, cb = reverse_padded(hb, lengths), reverse_padded(cb, lengths)
    out = torch.cat([hf, hb], -1)
    # Wrong: step T-1 is padding for every sequence shorter than T.
    h_n = torch.stack([hf[:, -1], hb[:, 0]])
    c_n = torch.stack([cf[:, -1], cb[:, 0]])
    return out, (h_n, c_n)
