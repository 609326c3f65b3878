"""A correct ctc in another style: the whole batch at once, a transition matrix, torch.logsumexp.

log 0 is stood in for by a huge finite negative number, so torch.logsumexp
never sees a slice that is all -inf (whose gradient would be nan); a loss
that ends up near 1e30 is an impossible alignment and becomes inf.
"""

import torch

FLOOR = -1e30  # "log 0", finite


def ctc_collapse(path, blank=0):
    path = torch.as_tensor(path, dtype=torch.long).reshape(-1)
    return [int(v) for v in torch.unique_consecutive(path).tolist() if v != blank]


def ctc_greedy_decode(log_probs, input_lengths, blank=0):
    best = log_probs.argmax(-1).T  # (B, T)
    return [ctc_collapse(row[: int(n)], blank) for row, n in zip(best, input_lengths)]


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean", zero_infinity=False):
    T, B, C = log_probs.shape
    dev, dt = log_probs.device, log_probs.dtype
    S = targets.shape[1]
    U = 2 * S + 1
    tl = torch.as_tensor(target_lengths, device=dev)
    il = torch.as_tensor(input_lengths, device=dev)
    valid = torch.arange(S, device=dev).unsqueeze(0) < tl.unsqueeze(1)
    tg = torch.where(valid, targets.to(dev), torch.full_like(targets.to(dev), blank))
    ext = torch.full((B, U), blank, dtype=torch.long, device=dev)
    ext[:, 1::2] = tg
    s = torch.arange(U, device=dev)
    # allowed[b, i, j]: state i at t-1 may move to state j at t
    stay_or_step = (s[None, :] - s[:, None] >= 0) & (s[None, :] - s[:, None] <= 1)
    skip = (s[None, :] - s[:, None] == 2).unsqueeze(0) & (ext != blank).unsqueeze(1) \
        & (ext.unsqueeze(1) != ext.unsqueeze(2))
    allowed = stay_or_step.unsqueeze(0) | skip  # (B, U, U)
    log_trans = torch.where(allowed, torch.zeros((), dtype=dt, device=dev), torch.full((), FLOOR, dtype=dt, device=dev))
    emit = torch.gather(log_probs.permute(1, 0, 2), 2, ext.unsqueeze(1).expand(B, T, U))  # (B, T, U)
    alpha = torch.where(s < 2, emit[:, 0], torch.full_like(emit[:, 0], FLOOR))
    for t in range(1, T):
        step = torch.logsumexp(alpha.unsqueeze(2) + log_trans, dim=1) + emit[:, t]
        alpha = torch.where((il > t).unsqueeze(1), step, alpha)
    last = torch.stack([2 * tl, (2 * tl - 1).clamp(min=0)], 1)
    ends = alpha.gather(1, last)
    ends = torch.where(torch.stack([tl >= 0, tl > 0], 1), ends, torch.full_like(ends, FLOOR))
    loss = -torch.logsumexp(ends, dim=1)
    impossible = loss > 1e29
    loss = torch.where(impossible, torch.full_like(loss, float("inf")), loss)
    if zero_infinity:
        loss = torch.where(impossible, torch.zeros_like(loss), loss)
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return (loss / tl.clamp(min=1).to(dt)).mean()
    return loss


def ctc_prefix_beam_search(log_probs, beam_width=8, blank=0):
    import math

    def lse(*xs):
        m = max(xs)
        return m if m == -math.inf else m + math.log(sum(math.exp(x - m) for x in xs))

    T, C = log_probs.shape
    NEG = -math.inf
    Pb, Pnb = {(): 0.0}, {(): NEG}
    for t in range(T):
        row = [float(v) for v in log_probs[t]]
        nb, nnb = {}, {}
        for pre in Pb:
            b, n = Pb[pre], Pnb[pre]
            nb[pre] = lse(nb.get(pre, NEG), b + row[blank], n + row[blank])
            for c in range(C):
                if c == blank:
                    continue
                new = pre + (c,)
                if pre and pre[-1] == c:
                    nnb[new] = lse(nnb.get(new, NEG), b + row[c])
                    nnb[pre] = lse(nnb.get(pre, NEG), n + row[c])
                else:
                    nnb[new] = lse(nnb.get(new, NEG), b + row[c], n + row[c])
        keys = set(nb) | set(nnb)
        score = {k: lse(nb.get(k, NEG), nnb.get(k, NEG)) for k in keys}
        keep = sorted(keys, key=lambda k: -score[k])[:beam_width]
        Pb = {k: nb.get(k, NEG) for k in keep}
        Pnb = {k: nnb.get(k, NEG) for k in keep}
    final = [(list(k), lse(Pb[k], Pnb[k])) for k in Pb]
    final = [f for f in final if f[1] > NEG]
    final.sort(key=lambda f: -f[1])
    return final
