"""A correct masking with no Python loop over steps: masked_scatter, gather, scatter, a 'sum' cross entropy."""

import torch
import torch.nn.functional as F


def pad_sequence(sequences, padding_value=0.0):
    first = sequences[0]
    lengths = torch.as_tensor([s.shape[0] for s in sequences], device=first.device)
    mask = lengths_to_mask(lengths)  # (B, T)
    rest = first.shape[1:]
    flat = torch.cat(list(sequences))  # (sum T_i, *), row-major order of the real positions
    padded = flat.new_full((*mask.shape, *rest), padding_value)
    return padded.masked_scatter(mask.view(*mask.shape, *[1] * len(rest)), flat), lengths


def lengths_to_mask(lengths, max_len=None):
    T = max_len if max_len is not None else int(lengths.max())
    return torch.arange(T, device=lengths.device).expand(len(lengths), T) < lengths.unsqueeze(1)


def masked_mean(x, mask, dim):
    count = (mask & torch.ones_like(x, dtype=torch.bool)).sum(dim)
    total = torch.where(mask, x, torch.zeros_like(x)).sum(dim)
    return total / count.clamp(min=1)


def masked_cross_entropy(logits, targets, mask):
    ignored = targets.masked_fill(~mask, -100)
    total = F.cross_entropy(logits.transpose(1, 2), ignored, ignore_index=-100, reduction="sum")
    return total / mask.sum().clamp(min=1)


def last_valid(outputs, lengths):
    B = outputs.shape[0]
    rest = outputs.shape[2:]
    index = (lengths - 1).view(B, 1, *[1] * len(rest)).expand(B, 1, *rest)
    return outputs.gather(1, index).squeeze(1)


def sort_by_length(lengths):
    order = torch.argsort(lengths, descending=True, stable=True)
    positions = torch.arange(len(order), device=order.device)
    inverse = torch.zeros_like(order).scatter(0, order, positions)
    return lengths.gather(0, order), order, inverse
