"""Layers that detach the carried state at every step ("to save memory"): values are right, but
backpropagation through time is cut, so gradients through the recurrence are wrong.

Expect: the state was detached between steps
"""

import torch


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    gates = x @ w_ih.T + h @ w_hh.T
    for b in (b_ih, b_hh):
        if b is not None:
            gates = gates + b
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    gi, gh = x @ w_ih.T, h @ w_hh.T
    if b_ih is not None:
        gi = gi + b_ih
    if b_hh is not None:
        gh = gh + b_hh
    (ir, iz, in_), (hr, hz, hn) = gi.chunk(3, 1), gh.chunk(3, 1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    n = torch.tanh(in_ + r * hn)
    return (1 - z) * n + z * h


def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    h, c, outs = h0, c0, []
    for t in range(x.shape[1]):
        h, c = lstm_cell(x[:, t], h.detach(), c.detach(), w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return torch.stack(outs, 1), (h, c)


def gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    h, outs = h0, []
    for t in range(x.shape[1]):
        h = gru_cell(x[:, t], h.detach(), w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return torch.stack(outs, 1), h


def lstm_num_params(input_size, hidden_size, bias=True):
    return 4 * (input_size * hidden_size + hidden_size ** 2 + (2 * hidden_size if bias else 0))


def gru_num_params(input_size, hidden_size, bias=True):
    return 3 * (input_size * hidden_size + hidden_size ** 2 + (2 * hidden_size if bias else 0))
