"""A correct ctc in another style: Graves' scaled forward variables in probability space.

One sequence at a time, one frame at a time: the forward variables are
probabilities, renormalised to sum to 1 after every frame (Rabiner's scaling),
and log p(l | x) is the sum of the logs of the scale factors. The forward
variables sum to 1, but the end states can fall below float32's normal range
over 1000 frames, so the recursion runs in float64 and casts back. Collapse
with itertools.groupby, greedy decoding with loops, beam search with plain
probabilities.
"""

import itertools
import math

import torch


def ctc_collapse(path, blank=0):
    if torch.is_tensor(path):
        path = path.tolist()
    return [int(k) for k, _ in itertools.groupby(path) if k != blank]


def ctc_greedy_decode(log_probs, input_lengths, blank=0):
    out = []
    for b in range(log_probs.shape[1]):
        n = int(input_lengths[b])
        path = [int(torch.argmax(log_probs[t, b])) for t in range(n)]
        out.append(ctc_collapse(path, blank))
    return out


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    losses = []
    for b in range(log_probs.shape[1]):
        n, L = int(input_lengths[b]), int(target_lengths[b])
        labels = [int(c) for c in targets[b, :L]]
        ext = [blank]
        for c in labels:
            ext += [c, blank]
        U = len(ext)
        probs = log_probs[:n, b].double().exp()  # (n, C)
        y = probs[:, ext]  # (n, U)
        can_skip = torch.tensor([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(U)],
                                device=log_probs.device)
        zero = torch.zeros(1, dtype=torch.float64, device=log_probs.device)
        start = torch.zeros(U, dtype=torch.float64, device=log_probs.device)
        start[: min(2, U)] = 1
        alpha = y[0] * start
        log_scale = torch.zeros((), dtype=torch.float64, device=log_probs.device)
        for t in range(1, n):
            c = alpha.sum()
            log_scale = log_scale + c.log()
            alpha = alpha / c
            from_prev = torch.cat([zero, alpha[:-1]])
            from_prev2 = torch.cat([zero, zero, alpha[:-2]])[:U] * can_skip
            alpha = (alpha + from_prev + from_prev2) * y[t]
        p = alpha[-1] + (alpha[-2] if U > 1 else 0)
        ok = p > 0
        logp = torch.where(ok, torch.where(ok, p, torch.ones_like(p)).log(), torch.full_like(p, -math.inf))
        losses.append(-(logp + log_scale))
    loss = torch.stack(losses).to(log_probs.dtype)
    if zero_infinity:
        loss = torch.where(torch.isinf(loss), torch.zeros_like(loss), loss)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    lengths = torch.as_tensor(target_lengths, device=loss.device).clamp(min=1).to(loss.dtype)
    return (loss / lengths).mean()


def ctc_prefix_beam_search(log_probs, beam_width=8, blank=0):
    probs = log_probs.exp().tolist()
    beams = {(): [1.0, 0.0]}  # prefix -> [p ending in blank, p ending in its last label]
    for row in probs:
        new = {}
        for prefix, (pb, pnb) in beams.items():
            for c, p in enumerate(row):
                if c == blank:
                    new.setdefault(prefix, [0.0, 0.0])[0] += (pb + pnb) * p
                    continue
                longer = prefix + (c,)
                new.setdefault(longer, [0.0, 0.0])
                if prefix and prefix[-1] == c:
                    new[longer][1] += pb * p
                    new.setdefault(prefix, [0.0, 0.0])[1] += pnb * p
                else:
                    new[longer][1] += (pb + pnb) * p
        best = sorted(new, key=lambda k: sum(new[k]), reverse=True)[:beam_width]
        beams = {k: new[k] for k in best}
    out = [(list(k), math.log(sum(v))) for k, v in beams.items() if sum(v) > 0]
    return sorted(out, key=lambda kv: kv[1], reverse=True)
