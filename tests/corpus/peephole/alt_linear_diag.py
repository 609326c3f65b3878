"""A correct peephole LSTM with F.linear on split weights and peepholes as c @ diag(w)."""

import torch
import torch.nn.functional as F


def peephole_lstm_cell(x, h, c, w_ih, w_hh, b, w_ci, w_cf, w_co):
    H = h.size(1)
    Wi, Wf, Wg, Wo = torch.split(w_ih, H, dim=0)
    Ui, Uf, Ug, Uo = torch.split(w_hh, H, dim=0)
    bi, bf, bg, bo = torch.split(b, H)
    i = torch.sigmoid(F.linear(x, Wi, bi) + F.linear(h, Ui) + c @ torch.diag(w_ci))
    f = torch.sigmoid(F.linear(x, Wf, bf) + F.linear(h, Uf) + c @ torch.diag(w_cf))
    c_t = f * c + i * torch.tanh(F.linear(x, Wg, bg) + F.linear(h, Ug))
    o = torch.sigmoid(F.linear(x, Wo, bo) + F.linear(h, Uo) + c_t @ torch.diag(w_co))
    return o * torch.tanh(c_t), c_t


def peephole_lstm_layer(x, h0, c0, w_ih, w_hh, b, w_ci, w_cf, w_co):
    hs = []
    state = (h0, c0)
    for x_t in x.unbind(dim=1):
        state = peephole_lstm_cell(x_t, *state, w_ih, w_hh, b, w_ci, w_cf, w_co)
        hs.append(state[0])
    return torch.stack(hs, 1), tuple(state)
