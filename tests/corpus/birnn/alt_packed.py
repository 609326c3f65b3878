"""A correct birnn done the way pack_padded_sequence does it: sort by length, shrink the batch each step.

After sorting longest first, step t concerns only the first batch_sizes[t] rows, so no mask is
needed: a row that has ended simply stops being updated. The states are unsorted at the end.
"""

import torch
import torch.nn.functional as F


def reverse_padded(x, lengths):
    out = x.clone()
    for b in range(x.shape[0]):
        n = int(lengths[b])
        out[b, :n] = x[b, :n].flip(0)
    return out


def _cell(x, h, c, w_ih, w_hh, b_ih, b_hh):
    i, f, g, o = (F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _packed_run(xs, sizes, w, H):
    """xs: list of (sizes[t], D) inputs, rows sorted longest first. Returns per-step outputs and final states."""
    n_rows = sizes[0]
    h = [xs[0].new_zeros(H) for _ in range(n_rows)]
    c = [xs[0].new_zeros(H) for _ in range(n_rows)]
    outs = []
    for x_t, k in zip(xs, sizes):
        hk, ck = _cell(x_t, torch.stack(h[:k]), torch.stack(c[:k]), *w)
        h[:k], c[:k] = list(hk), list(ck)
        outs.append(hk)
    return outs, torch.stack(h), torch.stack(c)


def bidirectional_lstm(x, lengths, fwd, bwd):
    B, T, _ = x.shape
    H = fwd[1].shape[1]
    order = sorted(range(B), key=lambda b: -int(lengths[b]))
    lens = [int(lengths[b]) for b in order]
    xs = x[order]
    sizes = [sum(n > t for n in lens) for t in range(lens[0])]
    fwd_in = [xs[:k, t] for t, k in enumerate(sizes)]
    xr = reverse_padded(xs, torch.tensor(lens))
    bwd_in = [xr[:k, t] for t, k in enumerate(sizes)]
    f_outs, h_f, c_f = _packed_run(fwd_in, sizes, fwd, H)
    b_outs, h_b, c_b = _packed_run(bwd_in, sizes, bwd, H)
    rows = []
    for r, n in enumerate(lens):
        f = torch.stack([f_outs[t][r] for t in range(n)])
        b = torch.stack([b_outs[n - 1 - t][r] for t in range(n)])
        rows.append(torch.cat([torch.cat([f, b], 1), x.new_zeros(T - n, 2 * H)]))
    inverse = [order.index(b) for b in range(B)]
    out = torch.stack(rows)[inverse]
    return out, (torch.stack([h_f, h_b])[:, inverse], torch.stack([c_f, c_b])[:, inverse])
