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
    if isinstance(path, torch.Tensor):
        assert path.dim() == 1, f"path must be 1-D, got shape {tuple(path.shape)}"
        path = path.tolist()
    labels: list[int] = []
    prev = None
    for p in path:
        # A new label starts only where the symbol changes; blanks never become labels.
        if p != prev and p != blank:
            labels.append(int(p))
        prev = p  # a blank also ends a run of repeats
    return labels


def ctc_greedy_decode(log_probs: torch.Tensor, input_lengths: torch.Tensor | list[int],
                      blank: int = 0) -> list[list[int]]:
    """Best-path decoding: the most likely symbol at every frame, collapsed.

    log_probs (T, B, C), input_lengths (B,) -> B labelings; sequence b uses
    its first ``input_lengths[b]`` frames only (the rest is padding).
    """
    T, B, C = log_probs.shape
    best = log_probs.argmax(dim=-1)  # (T, B)
    lengths = torch.as_tensor(input_lengths).tolist()
    return [ctc_collapse(best[: lengths[b], b], blank) for b in range(B)]


def _logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log(sum(exp(x))) along ``dim``: stable, and with gradient 0 (not nan) where all of x is -inf."""
    # Shift by the max so exp cannot underflow: alphas reach -T log C, far below
    # log of the smallest float. The shift cancels, so it needs no gradient.
    m = x.amax(dim=dim, keepdim=True).detach()
    m = torch.where(m.isinf(), torch.zeros_like(m), m)  # an all -inf slice: shift by 0
    s = (x - m).exp().sum(dim=dim, keepdim=True)
    # log(0) = -inf is the right value for an unreachable state, but its gradient
    # 1/0 turns 0 * inf into nan: take the log of a safe 1 there, then put -inf back.
    safe = torch.where(s > 0, s, torch.ones_like(s))
    out = torch.where(s > 0, safe.log(), torch.full_like(s, -math.inf)) + m
    return out.squeeze(dim)


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
    T, B, C = log_probs.shape
    assert targets.dim() == 2, f"targets must be padded 2-D (B, S), got shape {tuple(targets.shape)}"
    assert reduction in ("none", "mean", "sum"), f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}"
    S = targets.shape[1]
    U = 2 * S + 1
    device, dtype = log_probs.device, log_probs.dtype
    input_lengths = torch.as_tensor(input_lengths, device=device)
    target_lengths = torch.as_tensor(target_lengths, device=device)
    neg_inf = torch.tensor(-math.inf, dtype=dtype, device=device)

    # Padding past a target's length may hold anything (-1, a class id): read it as blank.
    real = torch.arange(S, device=device) < target_lengths[:, None]  # (B, S)
    labels = torch.where(real, targets.to(device), blank).long()  # (B, S)
    assert int(labels.min()) >= 0 and int(labels.max()) < C, \
        f"target labels must lie in [0, {C}), got {labels.tolist()}"
    # Blank-extended target l' = (blank, l1, blank, l2, ..., lS, blank).
    ext = torch.stack([torch.full_like(labels, blank), labels], dim=2).reshape(B, 2 * S)  # (B, 2S)
    ext = torch.cat([ext, torch.full_like(labels[:, :1], blank)], dim=1)  # (B, U)
    # Log-probability of each state's symbol at each frame.
    lp = log_probs.gather(2, ext[None].expand(T, B, U))  # (T, B, U)
    # One (B, U) view per frame. unbind, not lp[t] in the loop: the backward of T
    # slices would build T full (T, B, U) gradients, quadratic in T.
    frames = lp.unbind(0)  # T x (B, U)

    # The s-2 skip jumps from label l'[s-2] straight to label l'[s] over the blank
    # between them. Not into a blank, and not between equal labels: a repeated
    # label must pass through that blank, or the two copies would merge.
    skip = torch.zeros(B, U, dtype=torch.bool, device=device)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])

    # alpha[b, s]: log-probability of all path prefixes that are in state s now.
    # A path starts in the leading blank or in the first label.
    alpha = torch.where(torch.arange(U, device=device) < 2, frames[0], neg_inf)  # (B, U)
    for t in range(1, T):
        stay = alpha  # from s
        step = F.pad(alpha, (1, 0), value=-math.inf)[:, :U]  # from s-1, (B, U)
        jump = torch.where(skip, F.pad(alpha, (2, 0), value=-math.inf)[:, :U], neg_inf)  # from s-2
        new = _logsumexp(torch.stack([stay, step, jump]), dim=0) + frames[t]  # (3, B, U) -> (B, U)
        # Frames past a sequence's input length are padding: its alpha stays as it was.
        alpha = torch.where((t < input_lengths)[:, None], new, alpha)

    # A complete path ends in the trailing blank (state 2L) or in the last label (2L-1).
    last = 2 * target_lengths[:, None]  # (B, 1)
    end_blank = alpha.gather(1, last).squeeze(1)  # (B,)
    end_label = alpha.gather(1, (last - 1).clamp(min=0)).squeeze(1)  # (B,)
    end_label = torch.where(target_lengths > 0, end_label, neg_inf)  # an empty target has no last label
    losses = -_logsumexp(torch.stack([end_blank, end_label]), dim=0)  # (2, B) -> (B,)

    if zero_infinity:
        # where() routes no gradient into the discarded inf, so those samples get none.
        losses = torch.where(losses.isinf(), torch.zeros_like(losses), losses)
    if reduction == "mean":
        return (losses / target_lengths.clamp(min=1).to(dtype)).mean()
    if reduction == "sum":
        return losses.sum()
    return losses


def _logaddexp(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for Python floats, exact when either is -inf (probability 0)."""
    if a == -math.inf or b == -math.inf:
        return max(a, b)
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def ctc_prefix_beam_search(log_probs: torch.Tensor, beam_width: int = 8,
                           blank: int = 0) -> list[tuple[list[int], float]]:
    """Prefix beam search: the ``beam_width`` most likely labelings, best first.

    log_probs (T, C) for one utterance. Each entry is (labeling, log-probability
    summed over all its alignments). With a beam as wide as the search space the
    log-probabilities are exact. Labelings of probability zero are left out, so
    fewer than ``beam_width`` entries may come back.
    """
    T, C = log_probs.shape
    lp = log_probs.detach().tolist()  # plain floats: the search is bookkeeping, not tensor math
    # Each prefix keeps two log-probabilities: its paths so far that end in a
    # blank (pb) and those that end in its last label (pnb). They extend
    # differently when the next symbol repeats the last label.
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}
    for t in range(T):
        nxt: dict[tuple[int, ...], tuple[float, float]] = {}

        def add(prefix, pb=-math.inf, pnb=-math.inf):
            old_b, old_nb = nxt.get(prefix, (-math.inf, -math.inf))
            nxt[prefix] = (_logaddexp(old_b, pb), _logaddexp(old_nb, pnb))

        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            for c in range(C):
                p = lp[t][c]
                if c == blank:
                    add(prefix, pb=total + p)  # a blank leaves the labeling as it is
                elif prefix and c == prefix[-1]:
                    add(prefix, pnb=pnb + p)  # repeating the last label merges into it...
                    add(prefix + (c,), pnb=pb + p)  # ...unless a blank separates the copies
                else:
                    add(prefix + (c,), pnb=total + p)
        # Keep the beam_width most probable prefixes (summed over both endings).
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
        beams = dict(ranked[:beam_width])

    results = [(list(prefix), _logaddexp(pb, pnb)) for prefix, (pb, pnb) in beams.items()]
    results.sort(key=lambda r: r[1], reverse=True)
    return [(labels, score) for labels, score in results if score > -math.inf]
