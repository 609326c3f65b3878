"""A correct birnn written one sequence at a time, with four per-gate matmuls and explicit backward loops."""

import torch


def _gate(x, h, w_ih, w_hh, b_ih, b_hh, k, H):
    rows = slice(k * H, (k + 1) * H)
    return x @ w_ih[rows].T + b_ih[rows] + h @ w_hh[rows].T + b_hh[rows]


def _step(x, h, c, w):
    H = w[1].shape[1]
    i = torch.sigmoid(_gate(x, h, *w, 0, H))
    f = torch.sigmoid(_gate(x, h, *w, 1, H))
    g = torch.tanh(_gate(x, h, *w, 2, H))
    o = torch.sigmoid(_gate(x, h, *w, 3, H))
    c = f * c + i * g
    return o * torch.tanh(c), c


def reverse_padded(x, lengths):
    rows = []
    for b, n in enumerate(lengths.tolist()):
        rows.append(torch.cat([x[b, :n].flip(0), x[b, n:]], dim=0))
    return torch.stack(rows)


def bidirectional_lstm(x, lengths, fwd, bwd):
    B, T, D = x.shape
    H = fwd[1].shape[1]
    outs, hs, cs = [], [[], []], [[], []]
    for b, n in enumerate(lengths.tolist()):
        seq = x[b, :n]
        zero = x.new_zeros(H)
        h, c = zero, zero
        f_out = []
        for t in range(n):
            h, c = _step(seq[t], h, c, fwd)
            f_out.append(h)
        hs[0].append(h)
        cs[0].append(c)
        h, c = zero, zero
        b_out = [None] * n
        for t in range(n - 1, -1, -1):
            h, c = _step(seq[t], h, c, bwd)
            b_out[t] = h
        hs[1].append(h)
        cs[1].append(c)
        real = torch.cat([torch.stack(f_out), torch.stack(b_out)], dim=1)  # (n, 2H)
        outs.append(torch.cat([real, x.new_zeros(T - n, 2 * H)], dim=0))
    h_n = torch.stack([torch.stack(hs[0]), torch.stack(hs[1])])
    c_n = torch.stack([torch.stack(cs[0]), torch.stack(cs[1])])
    return torch.stack(outs), (h_n, c_n)
