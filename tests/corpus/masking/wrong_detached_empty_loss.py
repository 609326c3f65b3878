"""Right everywhere except that a batch with no real token gets a constant 0, cut off from the logits.

Expect: loss.backward() fails in a training loop
"""

import torch


def pad_sequence(sequences, padding_value=0.0):
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long, device=sequences[0].device)
    padded = sequences[0].new_full((len(sequences), int(lengths.max()), *sequences[0].shape[1:]), padding_value)
    for i, s in enumerate(sequences):
        padded[i, : len(s)] = s
    return padded, lengths


def lengths_to_mask(lengths, max_len=None):
    T = int(lengths.max()) if max_len is None else max_len
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(x, mask, dim):
    count = mask.expand(torch.broadcast_shapes(x.shape, mask.shape)).sum(dim)
    return torch.where(mask, x, 0.0).sum(dim) / count.clamp_min(1)


def masked_cross_entropy(logits, targets, mask):
    if not mask.any():
        return torch.zeros((), dtype=logits.dtype, device=logits.device)  # the mistake: no graph behind it
    nll = logits.logsumexp(-1) - logits.gather(-1, targets.masked_fill(~mask, 0)[..., None])[..., 0]
    return torch.where(mask, nll, 0.0).sum() / mask.sum()


def last_valid(outputs, lengths):
    return outputs[torch.arange(outputs.shape[0], device=outputs.device), lengths - 1]


def sort_by_length(lengths):
    sorted_lengths, order = torch.sort(lengths, descending=True, stable=True)
    return sorted_lengths, order, order.argsort()
