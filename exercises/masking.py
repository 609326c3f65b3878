# Exercise stub: fill in each function, then run `seqlings check masking`.
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
    # TODO: allocate (B, T_max, *) filled with padding_value and copy each sequence into
    #       its first T_i steps; lengths int64.
    # Shapes: [(T_i, *)] -> (B, T_max, *), (B,)
    raise NotImplementedError


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Boolean mask of real steps: ``mask[b, t] = t < lengths[b]``.

    lengths (B,) integer -> mask (B, T) bool on the lengths' device, where
    T is ``max_len`` if given, else the largest length.
    """
    # TODO: True at steps t < length.
    # Shapes: lengths (B,) -> (B, T) bool
    raise NotImplementedError


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` along ``dim`` over the positions where ``mask`` is True.

    ``mask`` is bool and broadcasts against ``x`` (e.g. x (B, T, H), mask (B, T, 1),
    dim=1 -> (B, H)); ``dim`` is removed. A slice with no real position gives
    exactly 0 and passes zero gradient (never nan). Padded positions get zero
    gradient.
    """
    # TODO: sum over real positions divided by their count (at least 1).
    # Shapes: x (B, T, H), mask (B, T, 1) -> (B, H) for dim=1
    raise NotImplementedError


def masked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-level cross entropy averaged over the real tokens only.

    logits (B, T, C) float, targets (B, T) int64 class ids, mask (B, T) bool -> () scalar.
    Equals ``F.cross_entropy(logits.reshape(-1, C), targets.masked_fill(~mask, -100).reshape(-1),
    ignore_index=-100)``: padded tokens add nothing to the sum nor to the count, and
    their targets may hold any value (e.g. -100). Stable for logits of magnitude 1e4.
    With no real token at all it returns 0 with zero gradient: ``F.cross_entropy``
    gives nan (0/0) there, which would poison a training run.
    """
    # TODO: per-token cross entropy, averaged over real tokens only.
    # Shapes: logits (B, T, C), targets (B, T), mask (B, T) -> ()
    raise NotImplementedError


def last_valid(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each sequence's output at its last real step, ``length - 1``.

    outputs (B, T, H), lengths (B,) int64 with 1 <= length <= T -> (B, H)
    (any trailing dims: (B, T, *) -> (B, *)). The gradient reaches only those steps.
    """
    # TODO: the output at step length-1 of each sequence.
    # Shapes: outputs (B, T, H), lengths (B,) -> (B, H)
    raise NotImplementedError


def sort_by_length(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sort a batch by length, longest first, and return the way back.

    lengths (B,) -> sorted_lengths (B,), order (B,) int64, inverse (B,) int64, with
    ``sorted_lengths = lengths[order]`` descending; the sort is stable (equal lengths
    keep their original order), so ``x[order]`` sorts a batch x and
    ``x[order][inverse]`` is x again.
    """
    # TODO: descending, stable sort of the lengths, its permutation, and the permutation
    #       that undoes it.
    # Shapes: lengths (B,) -> (B,), (B,), (B,)
    raise NotImplementedError
