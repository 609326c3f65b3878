"""A ctc_loss whose forward algorithm multiplies probabilities without any scaling.

Right for short inputs; over 1000 frames the forward variables underflow to 0
(about exp(-T log C)), so the loss comes out inf.

Expect: the forward variables underflowed
"""

import itertools
import math

import torch


def ctc_collapse(path, blank=0):
    if torch.is_tensor(path):
        path = path.tolist()
    return [int(k) for k, _ in itertools.groupby(path) if k != blank]


def ctc_greedy_decode(log_probs, input_lengths, blank=0):
    best = log_probs.argmax(-1)
    return [ctc_collapse(best[: int(n), b], blank) for b, n in enumerate(input_lengths)]


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    T, B, C = log_probs.shape
    S = targets.shape[1]
    U = 2 * S + 1
    tl = torch.as_tensor(target_lengths)
    valid = torch.arange(S)[None] < tl[:, None]
    labels = torch.where(valid, targets, blank)
    ext = torch.full((B, U), blank, dtype=torch.long)
    ext[:, 1::2] = labels
    y = log_probs.exp().gather(2, ext[None].expand(T, B, U))  # (T, B, U)
    skip = torch.zeros(B, U, dtype=torch.bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    alpha = y[0] * (torch.arange(U) < 2)
    for t in range(1, T):
        prev = torch.nn.functional.pad(alpha, (1, 0))[:, :U]
        prev2 = torch.nn.functional.pad(alpha, (2, 0))[:, :U] * skip
        new = (alpha + prev + prev2) * y[t]
        alpha = torch.where((t < torch.as_tensor(input_lengths))[:, None], new, alpha)
    p = alpha.gather(1, 2 * tl[:, None]).squeeze(1) + torch.where(
        tl > 0, alpha.gather(1, (2 * tl[:, None] - 1).clamp(min=0)).squeeze(1), 0.0)
    safe = torch.where(p > 0, p, torch.ones_like(p))
    loss = -torch.where(p > 0, safe.log(), -math.inf)
    if zero_infinity:
        loss = torch.where(loss.isinf(), torch.zeros_like(loss), loss)
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return (loss / tl.clamp(min=1).to(loss.dtype)).mean()
    return loss


def ctc_prefix_beam_search(log_probs, beam_width=8, blank=0):
    raise NotImplementedError
