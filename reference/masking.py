"""Padding and masking variable-length batches, written out by hand.

Matches ``torch.nn.utils.rnn.pad_sequence(batch_first=True)`` and
``torch.nn.functional.cross_entropy(ignore_index=...)``:
https://pytorch.org/docs/stable/generated/torch.nn.utils.rnn.pad_sequence.html
https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html

Shapes: B batch, T time (the longest length, T_max), T_i the length of
sequence i, * any trailing feature dims, H hidden, C classes.
Sequences are padded at the end; a mask is True at real steps, False at padding.
"""

from __future__ import annotations

import torch


def pad_sequence(sequences: list[torch.Tensor],
                 padding_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``B`` tensors of shape ``(T_i, *)`` into ``(B, T_max, *)``, padded at the end.

    ``padded`` equals ``torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True,
    padding_value=padding_value)``: sequence i fills steps ``0 .. T_i - 1`` of row i,
    every later step holds ``padding_value``; dtype and device are the sequences'
    (integer token ids stay integers). Gradients flow back to each sequence.
    ``lengths (B,)`` holds each T_i as int64 on the sequences' device.
    """
    assert len(sequences) > 0, "pad_sequence needs at least one sequence, got none"
    first = sequences[0]
    rest = first.shape[1:]
    for i, s in enumerate(sequences):
        assert s.shape[1:] == rest, f"sequence {i} has trailing dims {tuple(s.shape[1:])}, sequence 0 has {tuple(rest)}"
    lengths = torch.tensor([s.shape[0] for s in sequences], dtype=torch.long, device=first.device)  # (B,)
    B, T = len(sequences), max(s.shape[0] for s in sequences)
    # Start from padding everywhere, then copy each sequence over its first T_i steps.
    padded = first.new_full((B, T, *rest), padding_value)  # (B, T_max, *)
    for i, s in enumerate(sequences):
        padded[i, : s.shape[0]] = s
    return padded, lengths


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Boolean mask of real steps: ``mask[b, t] = t < lengths[b]``.

    lengths (B,) integer -> mask (B, T) bool on the lengths' device, where
    T is ``max_len`` if given, else the largest length.
    """
    T = int(lengths.max()) if max_len is None else max_len
    steps = torch.arange(T, device=lengths.device)  # (T,)
    # Broadcast a row of positions against a column of lengths.
    return steps[None, :] < lengths[:, None]  # (1, T) < (B, 1) -> (B, T)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` along ``dim`` over the positions where ``mask`` is True.

    ``mask`` is bool and broadcasts against ``x`` (e.g. x (B, T, H), mask (B, T, 1),
    dim=1 -> (B, H)); ``dim`` is removed. A slice with no real position gives
    exactly 0 and passes zero gradient (never nan). Padded positions get zero
    gradient.
    """
    shape = torch.broadcast_shapes(x.shape, mask.shape)
    # Zero the padding rather than multiply by the mask: 0 * inf would be nan.
    total = x.masked_fill(~mask, 0.0).sum(dim)  # x's shape without `dim`
    # Count over the broadcast mask: a mask of size 1 along `dim` stands for all of it.
    count = mask.expand(shape).sum(dim)  # same shape as total, int64
    # An empty slice has total 0; dividing by 1 keeps it 0 and its gradient finite.
    return total / count.clamp_min(1)


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-level cross entropy averaged over the real tokens only.

    logits (B, T, C) float, targets (B, T) int64 class ids, mask (B, T) bool -> () scalar.
    Equals ``F.cross_entropy(logits.reshape(-1, C), targets.masked_fill(~mask, -100).reshape(-1),
    ignore_index=-100)``: padded tokens add nothing to the sum nor to the count, and
    their targets may hold any value (e.g. -100). Stable for logits of magnitude 1e4.
    With no real token at all it returns 0 with zero gradient: ``F.cross_entropy``
    gives nan (0/0) there, which would poison a training run.
    """
    # Targets at padding may be out of range (-100): point them at class 0 so
    # gather works; their losses are zeroed below.
    safe = targets.masked_fill(~mask, 0)  # (B, T)
    # -log softmax(logits)[target] = logsumexp(logits) - logits[target];
    # logsumexp subtracts the max first, so exp never overflows.
    lse = logits.logsumexp(dim=-1)  # (B, T)
    picked = logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T, 1) -> (B, T)
    nll = (lse - picked).masked_fill(~mask, 0.0)  # (B, T), 0 at padding
    return nll.sum() / mask.sum().clamp_min(1)


def last_valid(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's output at its last real step, ``length - 1``.

    outputs (B, T, H), lengths (B,) int64 with 1 <= length <= T -> (B, H)
    (any trailing dims: (B, T, *) -> (B, *)). The gradient reaches only those steps.
    """
    assert bool((lengths >= 1).all()), f"every length must be at least 1, got {lengths.tolist()}"
    B = outputs.shape[0]
    rows = torch.arange(B, device=outputs.device)  # (B,)
    # Pair row b with step lengths[b] - 1 (not outputs[:, lengths - 1], which is (B, B, H)).
    return outputs[rows, lengths - 1]  # (B, H)


def sort_by_length(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sort a batch by length, longest first, and return the way back.

    lengths (B,) -> sorted_lengths (B,), order (B,) int64, inverse (B,) int64, with
    ``sorted_lengths = lengths[order]`` descending; the sort is stable (equal lengths
    keep their original order), so ``x[order]`` sorts a batch x and
    ``x[order][inverse]`` is x again.
    """
    sorted_lengths, order = torch.sort(lengths, descending=True, stable=True)  # (B,), (B,)
    # order sends position i to order[i]; the inverse sends order[i] back to i.
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order), device=order.device)  # (B,)
    return sorted_lengths, order, inverse
