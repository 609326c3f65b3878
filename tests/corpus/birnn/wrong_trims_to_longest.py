"""Sizes the output by the longest length, as pad_packed_sequence does without total_length.

Expect: out stops at the longest length: keep all T steps
"""

import torch


def reverse_padded(x, lengths):
    out = x.clone()
    for b, n in enumerate(lengths.tolist()):
        out[b, :n] = x[b, :n].flip(0)
    return out


def _cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    i, f, g, o = (x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _run(x, mask, w):
    B, T, _ = x.shape
    H = w[1].shape[1]
    h = c = x.new_zeros(B, H)
    outs = []
    for t in range(T):
        h2, c2 = _cell(x[:, t], h, c, *w)
        m = mask[:, t, None]
        h, c = torch.where(m, h2, h), torch.where(m, c2, c)
        outs.append(torch.where(m, h2, 0.0))
    return torch.stack(outs, 1), h, c


def bidirectional_lstm(x, lengths, fwd, bwd):
    # Wrong: the batch is cut to the longest length, dropping padded steps the caller expects.
    T = int(lengths.max())
    x = x[:, :T]
    mask = torch.arange(T, device=x.device)[None, :] < lengths.to(x.device)[:, None]
    out_f, hf, cf = _run(x, mask, fwd)
    out_r, hb, cb = _run(reverse_padded(x, lengths), mask, bwd)
    out = torch.cat([out_f, reverse_padded(out_r, lengths)], -1)
    return out, (torch.stack([hf, hb]), torch.stack([cf, cb]))
