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
    assert targets.dim() == 2, f"targets must be (B, T), got shape {tuple(targets.shape)}"
    B, T = targets.shape
    bos = targets.new_full((B, 1), bos_id)  # (B, 1)
    return torch.cat([bos, targets[:, :-1]], dim=1)  # (B, 1) + (B, T-1) -> (B, T)


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
    assert targets.dim() == 2, f"targets must be (B, T), got shape {tuple(targets.shape)}"
    B, T = targets.shape
    tokens = torch.full((B,), bos_id, dtype=torch.long, device=targets.device)  # (B,)
    steps = []
    for t in range(T):
        logits_t, state = step_fn(tokens, state)  # (B, V)
        steps.append(logits_t)
        if t < T - 1:
            # Draw every time, even at ratio 0 or 1, so a seeded run consumes the
            # generator the same way whatever the schedule says.
            u = torch.rand(B, generator=generator)  # (B,) on the CPU
            use_target = (u < teacher_forcing_ratio).to(targets.device)  # (B,) one coin per example
            # argmax is piecewise constant: the chosen token carries no gradient.
            predicted = logits_t.detach().argmax(dim=-1)  # (B,)
            tokens = torch.where(use_target, targets[:, t], predicted)  # (B,)
    return torch.stack(steps, dim=1)  # T x (B, V) -> (B, T, V)


def greedy_decode(step_fn: StepFn, state: Any, bos_id: int, eos_id: int, max_len: int) -> torch.Tensor:
    """Greedy decoding: feed back the argmax until every sequence has emitted EOS, at most max_len steps.

    Returns (B, L) int64 with L <= max_len. Once sequence b has emitted
    ``eos_id``, its later positions hold ``eos_id``. Decoding stops right after
    the step at which the last unfinished sequence emits EOS. B and the device
    come from ``state`` (its first tensor when it is a tuple), whose first dim is B.
    """
    first = state[0] if isinstance(state, (tuple, list)) else state
    B, device = first.shape[0], first.device
    tokens = torch.full((B,), bos_id, dtype=torch.long, device=device)  # (B,)
    finished = torch.zeros(B, dtype=torch.bool, device=device)  # (B,)
    out = []
    for _ in range(max_len):
        logits_t, state = step_fn(tokens, state)  # (B, V)
        # A finished sequence keeps emitting EOS: it is padding from now on.
        tokens = torch.where(finished, eos_id, logits_t.argmax(dim=-1))  # (B,)
        out.append(tokens)
        finished = finished | (tokens == eos_id)
        if bool(finished.all()):
            break
    if not out:
        return torch.empty(B, 0, dtype=torch.long, device=device)  # max_len == 0
    return torch.stack(out, dim=1)  # L x (B,) -> (B, L)


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean token cross entropy over the non-pad targets; a scalar in the logits' dtype.

    logits (B, T, V), targets (B, T) int64 -> (). Equals
    ``F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=pad_id)``:
    pad tokens add nothing to the sum nor to the count.
    """
    B, T, V = logits.shape
    assert targets.shape == (B, T), f"targets must be (B, T) = {(B, T)}, got {tuple(targets.shape)}"
    real = targets != pad_id  # (B, T) bool
    # -log softmax(logits)[y] = logsumexp(logits) - logits[y]; logsumexp subtracts the max, so it is stable.
    safe = targets.masked_fill(~real, 0)  # (B, T) any valid index at pads (pad_id may be -100)
    picked = logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T, V) -> (B, T)
    nll = torch.logsumexp(logits, dim=-1) - picked  # (B, T)
    # Average over real tokens, not over B * T: pads must not dilute the loss.
    return nll.masked_fill(~real, 0.0).sum() / real.sum()  # ()
