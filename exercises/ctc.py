# Exercise stub: fill in each function, then run `seqlings check ctc`.
"""Connectionist temporal classification (CTC), written out by hand.

Graves, Fernandez, Gomez and Schmidhuber 2006, "Connectionist Temporal
Classification: Labelling Unsegmented Sequence Data with Recurrent Neural
Networks", sections 3 (paths and labelings) and 4.1 (the forward algorithm).
``ctc_loss`` matches ``torch.nn.functional.ctc_loss``:
https://pytorch.org/docs/stable/generated/torch.nn.functional.ctc_loss.html

A path picks one symbol (a label or the blank) per input frame. It collapses
to a labeling by merging repeats FIRST, then dropping blanks, so a doubled
letter needs a blank between its copies: "H _ E _ L L _ O" collapses to HELO,
"H E L _ L O" to HELLO. The probability of a labeling is the sum over every
path that collapses to it.

Shapes: T input frames, B batch, C classes (blank included), S longest target,
U = 2S + 1 states of the blank-extended target (blank, l1, blank, ..., lS, blank).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def ctc_collapse(path: list[int] | torch.Tensor, blank: int = 0) -> list[int]:
    """Collapse a CTC path to its labeling: merge repeats, then drop blanks.

    ``path`` is a list of ints or a 1-D tensor. ``[1, 1, 0, 1, 2, 2] -> [1, 1, 2]``:
    the blank between the two 1s keeps them apart.
    """
    # TODO: walk the path and keep a symbol when it differs from the previous symbol and
    #       is not the blank (merge repeats, then drop blanks).
    # Shapes: [1, 1, 0, 1, 2, 2] -> [1, 1, 2]
    raise NotImplementedError


def ctc_greedy_decode(log_probs: torch.Tensor, input_lengths: torch.Tensor | list[int],
                      blank: int = 0) -> list[list[int]]:
    """Best-path decoding: the most likely symbol at every frame, collapsed.

    log_probs (T, B, C), input_lengths (B,) -> B labelings; sequence b uses
    its first ``input_lengths[b]`` frames only (the rest is padding).
    """
    # TODO: take the argmax class of every frame, then collapse the first
    #       input_lengths[b] frames of each sequence.
    # Shapes: log_probs (T, B, C), input_lengths (B,) -> B lists of ints
    raise NotImplementedError


def ctc_loss(log_probs: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
             target_lengths: torch.Tensor, blank: int = 0, reduction: str = "mean",
             zero_infinity: bool = False) -> torch.Tensor:
    """CTC negative log-likelihood by the forward algorithm in log space; mirrors ``F.ctc_loss``.

    log_probs (T, B, C) from log_softmax; targets (B, S) padded (values past
    ``target_lengths[b]`` are ignored, whatever they are); input_lengths (B,);
    target_lengths (B,). Returns (B,) for reduction="none", else a 0-d tensor:
    "sum" adds the losses, "mean" divides each by its target length (at least 1)
    and averages. An impossible alignment costs inf, or 0 with zero_infinity=True
    (and then no gradient). Gradients come from autograd through this function.
    """
    # TODO: build the blank-extended targets, run the forward recursion in log space
    #       frame by frame (stay, step, allowed skip), freeze each sequence after its
    #       input length, log-add the last two states, then apply zero_infinity and the
    #       reduction.
    # Shapes: log_probs (T, B, C), targets (B, S) -> (B,) for 'none', () otherwise
    raise NotImplementedError


def ctc_prefix_beam_search(log_probs: torch.Tensor, beam_width: int = 8,
                           blank: int = 0) -> list[tuple[list[int], float]]:
    """Prefix beam search: the ``beam_width`` most likely labelings, best first.

    log_probs (T, C) for one utterance. Each entry is (labeling, log-probability
    summed over all its alignments). With a beam as wide as the search space the
    log-probabilities are exact. Labelings of probability zero are left out, so
    fewer than ``beam_width`` entries may come back.
    """
    # TODO: extend every prefix frame by frame, keeping log-probabilities of its blank-
    #       ending and label-ending paths; prune to beam_width; return the survivors
    #       with a finite total, best first.
    # Shapes: log_probs (T, C) -> [([labels], log p), ...]
    raise NotImplementedError
