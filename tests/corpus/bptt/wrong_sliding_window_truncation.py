"""Right except for truncation: it reads truncate=k as "send each step's gradient back k steps"
(a sliding window per loss term) instead of the contract's chunks cut by h.detach() every k steps.

Expect: sliding-window truncation
"""

import torch


def rnn_forward(x, h0, w_xh, w_hh, b):
    h, out = h0, []
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b)
        out.append(h)
    hs = torch.stack(out, 1)
    return hs, (x, h0, w_xh, w_hh, hs)


def rnn_backward(dhs, cache, truncate=None):
    x, h0, w_xh, w_hh, hs = cache
    B, T, H = hs.shape
    k = truncate or T
    das = torch.zeros_like(hs)
    dh0 = torch.zeros_like(h0)
    for end in range(T):  # the loss term at step `end` ...
        g = dhs[:, end]
        for t in range(end, max(-1, end - k), -1):  # ... goes back k steps
            da = g * (1 - hs[:, t] ** 2)
            das[:, t] = das[:, t] + da
            g = da @ w_hh.T
            if t == 0:
                dh0 = dh0 + g
    prev = torch.cat([h0[:, None], hs[:, :-1]], 1)
    return {"dx": das @ w_xh.T, "dh0": dh0, "dw_xh": torch.einsum("btd,bth->dh", x, das),
            "dw_hh": torch.einsum("bti,bth->ih", prev, das), "db": das.sum((0, 1))}


def grad_norms_through_time(cache, dh_last):
    _, _, _, w_hh, hs = cache
    g, out = dh_last, [torch.linalg.vector_norm(dh_last)]
    for t in range(hs.shape[1] - 1, 0, -1):
        g = (g * (1 - hs[:, t] ** 2)) @ w_hh.T
        out.insert(0, torch.linalg.vector_norm(g))
    return torch.stack(out)
