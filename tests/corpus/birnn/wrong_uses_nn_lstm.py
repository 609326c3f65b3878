"""Hands the work to nn.LSTM and pack_padded_sequence, which this exercise puts off limits.

Expect: which this exercise puts off limits
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def reverse_padded(x, lengths):
    out = x.clone()
    for b, n in enumerate(lengths.tolist()):
        out[b, :n] = x[b, :n].flip(0)
    return out


def bidirectional_lstm(x, lengths, fwd, bwd):
    B, T, D = x.shape
    H = fwd[1].shape[1]
    lstm = nn.LSTM(D, H, batch_first=True, bidirectional=True, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for suffix, ws in (("", fwd), ("_reverse", bwd)):
            for name, w in zip(("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"), ws):
                getattr(lstm, name + suffix).copy_(w)
    out, states = lstm(pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False))
    return pad_packed_sequence(out, batch_first=True, total_length=T)[0], states
