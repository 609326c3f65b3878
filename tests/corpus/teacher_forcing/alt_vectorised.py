"""A correct teacher_forcing in another style: coins drawn up front, greedy padding done afterwards, F.cross_entropy."""

import torch
import torch.nn.functional as F


def shift_right(targets, bos_id):
    return targets.roll(1, dims=1).index_fill(1, torch.tensor([0], device=targets.device), bos_id)


def decode(step_fn, state, targets, bos_id, teacher_forcing_ratio=1.0, generator=None):
    B, T = targets.shape
    # T-1 draws of torch.rand(B) from one generator are the rows of one torch.rand(T-1, B) draw.
    coins = torch.rand(max(T - 1, 0), B, generator=generator).lt(teacher_forcing_ratio).to(targets.device)
    tok = targets.new_full((B,), bos_id, dtype=torch.int64)
    all_logits = []
    for t in range(T):
        out, state = step_fn(tok, state)
        all_logits.append(out.unsqueeze(1))
        if t + 1 < T:
            tok = out.argmax(1)
            tok[coins[t]] = targets[coins[t], t]
    return torch.cat(all_logits, dim=1)


def greedy_decode(step_fn, state, bos_id, eos_id, max_len):
    lead = state[0] if isinstance(state, (tuple, list)) else state
    B = lead.shape[0]
    tok = torch.full((B,), bos_id, dtype=torch.int64, device=lead.device)
    emitted = []
    for _ in range(max_len):
        logits, state = step_fn(tok, state)
        tok = logits.argmax(-1)
        emitted.append(tok)
        if (torch.stack(emitted, 1) == eos_id).any(1).all():
            break
    seq = torch.stack(emitted, 1) if emitted else torch.empty(B, 0, dtype=torch.int64, device=lead.device)
    # Everything after a sequence's first EOS becomes EOS.
    after_eos = (seq == eos_id).long().cummax(dim=1).values.bool()
    return seq.masked_fill(after_eos, eos_id)


def sequence_loss(logits, targets, pad_id):
    return F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=pad_id)
