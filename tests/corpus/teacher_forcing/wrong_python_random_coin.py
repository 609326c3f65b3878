"""Scheduled sampling with Python's random module: one coin per step for the whole batch, and the generator is ignored.

Expect: but not where this generator's coins say
"""

import random

import torch
import torch.nn.functional as F


def shift_right(targets, bos_id):
    out = targets.clone()
    out[:, 1:] = targets[:, :-1]
    out[:, 0] = bos_id
    return out


def decode(step_fn, state, targets, bos_id, teacher_forcing_ratio=1.0, generator=None):
    B, T = targets.shape
    tokens = torch.full((B,), bos_id, dtype=torch.long, device=targets.device)
    steps = []
    for t in range(T):
        logits, state = step_fn(tokens, state)
        steps.append(logits)
        if random.random() < teacher_forcing_ratio:
            tokens = targets[:, t]
        else:
            tokens = logits.argmax(-1)
    return torch.stack(steps, dim=1)


def greedy_decode(step_fn, state, bos_id, eos_id, max_len):
    first = state[0] if isinstance(state, tuple) else state
    B = first.shape[0]
    tokens = torch.full((B,), bos_id, dtype=torch.long, device=first.device)
    finished = torch.zeros(B, dtype=torch.bool, device=first.device)
    out = []
    for _ in range(max_len):
        logits, state = step_fn(tokens, state)
        tokens = torch.where(finished, eos_id, logits.argmax(-1))
        out.append(tokens)
        finished = finished | (tokens == eos_id)
        if finished.all():
            break
    return torch.stack(out, dim=1)


def sequence_loss(logits, targets, pad_id):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=pad_id)
