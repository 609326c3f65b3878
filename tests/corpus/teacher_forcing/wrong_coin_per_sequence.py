"""Scheduled sampling decided once per sequence: one coin per example before the loop, not after every step.

Expect: one coin per example for the whole sequence, drawn once before the loop
"""

import torch


def shift_right(targets, bos_id):
    return torch.cat([targets.new_full((targets.shape[0], 1), bos_id), targets[:, :-1]], dim=1)


def decode(step_fn, state, targets, bos_id, teacher_forcing_ratio=1.0, generator=None):
    B, T = targets.shape
    use_targets = (torch.rand(B, generator=generator) < teacher_forcing_ratio).to(targets.device)
    tokens = torch.full((B,), bos_id, dtype=torch.long, device=targets.device)
    steps = []
    for t in range(T):
        logits, state = step_fn(tokens, state)
        steps.append(logits)
        tokens = torch.where(use_targets, targets[:, t], logits.argmax(-1))
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
    real = targets != pad_id
    nll = torch.logsumexp(logits, -1) - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (nll * real).sum() / real.sum()
