"""A correct masking written with Python loops over the batch, as a first attempt often is."""

import torch
import torch.nn.functional as F


def pad_sequence(sequences, padding_value=0.0):
    T = max(len(s) for s in sequences)
    rows = []
    for s in sequences:
        pad = torch.full((T - len(s), *s.shape[1:]), padding_value, dtype=s.dtype, device=s.device)
        rows.append(torch.cat([s, pad], dim=0))
    lengths = torch.tensor([len(s) for s in sequences], device=sequences[0].device)  # ints -> int64
    return torch.stack(rows), lengths


def lengths_to_mask(lengths, max_len=None):
    T = int(lengths.max()) if max_len is None else max_len
    mask = torch.zeros(len(lengths), T, dtype=torch.bool, device=lengths.device)
    for b, n in enumerate(lengths.tolist()):
        mask[b, :n] = True
    return mask


def masked_mean(x, mask, dim):
    m = mask.to(x.dtype).expand_as(x)
    count = m.sum(dim)
    return (x * m).sum(dim) / count.clamp(min=1.0)


def masked_cross_entropy(logits, targets, mask):
    losses = []
    for b in range(logits.shape[0]):
        real = mask[b]
        if real.any():
            logp = F.log_softmax(logits[b][real], dim=-1)  # (n, C)
            losses.append(-logp[torch.arange(logp.shape[0]), targets[b][real]])
    if not losses:
        return logits.sum() * 0.0  # still a function of logits, so backward works
    all_losses = torch.cat(losses)
    return all_losses.sum() / all_losses.numel()


def last_valid(outputs, lengths):
    return torch.stack([outputs[b, n - 1] for b, n in enumerate(lengths.tolist())])


def sort_by_length(lengths):
    order_list = sorted(range(len(lengths)), key=lambda i: -int(lengths[i]))  # Python's sort is stable
    order = torch.tensor(order_list, dtype=torch.long, device=lengths.device)
    inverse = torch.empty_like(order)
    for position, i in enumerate(order_list):
        inverse[i] = position
    return lengths[order], order, inverse
