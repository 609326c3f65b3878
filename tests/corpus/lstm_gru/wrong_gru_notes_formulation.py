"""A GRU written from the course notes (Cho et al. 2014): the reset gate multiplies h BEFORE the matmul.

h~ = tanh(W [r * h, x]) is a different function from PyTorch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
(errata 5). The LSTM parts are correct.

Expect: reset gate applied before the hidden matmul
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
    H = h.shape[1]
    b_i = b_ih if b_ih is not None else torch.zeros(3 * H, dtype=x.dtype, device=x.device)
    b_h = b_hh if b_hh is not None else torch.zeros(3 * H, dtype=x.dtype, device=x.device)
    # z_t = sigma(W_z [h, x]), r_t = sigma(W_r [h, x])
    r = torch.sigmoid(x @ w_ih[:H].T + h @ w_hh[:H].T + b_i[:H] + b_h[:H])
    z = torch.sigmoid(x @ w_ih[H:2 * H].T + h @ w_hh[H:2 * H].T + b_i[H:2 * H] + b_h[H:2 * H])
    # h~_t = tanh(W [r * h, x]): reset first, then the matmul
    n = torch.tanh(x @ w_ih[2 * H:].T + (r * h) @ w_hh[2 * H:].T + b_i[2 * H:] + b_h[2 * H:])
    return (1 - z) * n + z * h


def lstm_layer(x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    h, c, outs = h0, c0, []
    for t in range(x.shape[1]):
        h, c = lstm_cell(x[:, t], h, c, w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return torch.stack(outs, 1), (h, c)


def gru_layer(x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    h, outs = h0, []
    for t in range(x.shape[1]):
        h = gru_cell(x[:, t], h, w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return torch.stack(outs, 1), h


def lstm_num_params(input_size, hidden_size, bias=True):
    return 4 * (input_size * hidden_size + hidden_size ** 2 + 2 * hidden_size * bias)


def gru_num_params(input_size, hidden_size, bias=True):
    return 3 * (input_size * hidden_size + hidden_size ** 2 + 2 * hidden_size * bias)
