"""A correct teacher_forcing written with per-example Python loops, as a first attempt often is."""

import torch


def shift_right(targets, bos_id):
    rows = [[bos_id] + row[:-1] for row in targets.tolist()]
    return torch.tensor(rows, dtype=targets.dtype, device=targets.device).reshape(targets.shape)


def decode(step_fn, state, targets, bos_id, teacher_forcing_ratio=1.0, generator=None):
    B, T = targets.shape
    inputs = torch.tensor([bos_id] * B, dtype=torch.long, device=targets.device)
    outputs = []
    for t in range(T):
        logits, state = step_fn(inputs, state)
        outputs.append(logits)
        if t == T - 1:
            break
        coins = torch.rand(B, generator=generator)
        chosen = []
        for b in range(B):
            if coins[b].item() < teacher_forcing_ratio:
                chosen.append(int(targets[b, t]))
            else:
                chosen.append(int(torch.argmax(logits[b])))
        inputs = torch.tensor(chosen, dtype=torch.long, device=targets.device)
    return torch.stack(outputs).permute(1, 0, 2)


def greedy_decode(step_fn, state, bos_id, eos_id, max_len):
    ref = state[0] if isinstance(state, tuple) else state
    B, device = ref.size(0), ref.device
    inputs = torch.tensor([bos_id] * B, dtype=torch.long, device=device)
    done = [False] * B
    rows = [[] for _ in range(B)]
    for _ in range(max_len):
        logits, state = step_fn(inputs, state)
        nxt = []
        for b in range(B):
            tok = eos_id if done[b] else int(logits[b].argmax())
            rows[b].append(tok)
            done[b] = done[b] or tok == eos_id
            nxt.append(tok)
        if all(done):
            break
        inputs = torch.tensor(nxt, dtype=torch.long, device=device)
    L = len(rows[0])
    return torch.tensor(rows, dtype=torch.long, device=device).reshape(B, L)


def sequence_loss(logits, targets, pad_id):
    B, T, V = logits.shape
    total, count = logits.new_zeros(()), 0
    for b in range(B):
        for t in range(T):
            y = int(targets[b, t])
            if y == pad_id:
                continue
            row = logits[b, t]
            m = row.max()
            total = total + (m + torch.log(torch.exp(row - m).sum())) - row[y]
            count += 1
    return total / count
