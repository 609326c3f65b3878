# Exercise stub: fill in each function, then run `seqlings check teacher_forcing`.
"""Teacher forcing, free running and scheduled sampling for a seq2seq decoder, written out by hand.

Teacher forcing (Williams and Zipser 1989) feeds the decoder the ground-truth
previous token; free running feeds its own prediction; scheduled sampling
(Bengio et al. 2015, "Scheduled Sampling for Sequence Prediction with
Recurrent Neural Networks") flips a coin per example and step. The loss
equals ``torch.nn.functional.cross_entropy(..., ignore_index=pad_id)``:
https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html

A decoder is a ``step_fn(tokens (B,), state) -> (logits (B, V), state)``; the
state is opaque here (a tensor (B, H), or a tuple of them for an LSTM).

Shapes: B batch, T target length, V vocabulary, H hidden, L decoded length.
Token ids are int64.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def shift_right(targets: torch.Tensor, bos_id: int) -> torch.Tensor:
    """The decoder inputs under teacher forcing: ``[bos, y_0, .., y_{T-2}]`` per row.

    targets (B, T) int64 -> (B, T), same dtype and device. Input t is the
    token before target t, so the last target is never an input.
    """
    # TODO: put a column of bos_id in front of the targets and drop their last column.
    # Shapes: targets (B, T) -> (B, 1) + (B, T-1) -> (B, T)
    raise NotImplementedError


def decode(step_fn: StepFn, state: Any, targets: torch.Tensor, bos_id: int,
           teacher_forcing_ratio: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Run the decoder for T steps, feeding targets or its own argmax; return the logits (B, T, V).

    The first input is ``bos_id``. After step t (for t < T-1) draw
    ``u = torch.rand(B, generator=generator)`` on the CPU, whatever the ratio;
    example b then feeds ``targets[b, t]`` if ``u[b] < teacher_forcing_ratio``,
    else the argmax of its own step-t logits. Ratio 1 is teacher forcing, 0 is
    free running, in between is scheduled sampling. Gradients flow through
    the logits and the state, never through the choice of token.
    """
    # TODO: start from BOS; at each step call step_fn and keep its logits; after every
    #       step t < T-1 draw u = torch.rand(B, generator=generator) and feed targets[:,
    #       t] where u < teacher_forcing_ratio, the step's argmax elsewhere.
    # Shapes: targets (B, T), T x logits (B, V) -> (B, T, V)
    raise NotImplementedError


def greedy_decode(step_fn: StepFn, state: Any, bos_id: int, eos_id: int, max_len: int) -> torch.Tensor:
    """Greedy decoding: feed back the argmax until every sequence has emitted EOS, at most max_len steps.

    Returns (B, L) int64 with L <= max_len. Once sequence b has emitted
    ``eos_id``, its later positions hold ``eos_id``. Decoding stops right after
    the step at which the last unfinished sequence emits EOS. B and the device
    come from ``state`` (its first tensor when it is a tuple), whose first dim is B.
    """
    # TODO: from BOS, feed back the argmax; a sequence that has emitted EOS keeps
    #       emitting eos_id; stop once every sequence has emitted EOS, or after max_len
    #       steps.
    # Shapes: state (B, H) -> L x tokens (B,) -> (B, L) int64, L <= max_len
    raise NotImplementedError


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean token cross entropy over the non-pad targets; a scalar in the logits' dtype.

    logits (B, T, V), targets (B, T) int64 -> (). Equals
    ``F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=pad_id)``:
    pad tokens add nothing to the sum nor to the count.
    """
    # TODO: per-token cross entropy (logsumexp of the logits minus the target's logit),
    #       averaged over the non-pad targets only.
    # Shapes: logits (B, T, V), targets (B, T) -> ()
    raise NotImplementedError
