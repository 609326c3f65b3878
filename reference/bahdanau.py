"""Additive (Bahdanau) attention and Luong's scores, written out by hand.

Bahdanau, Cho, Bengio 2015, "Neural Machine Translation by Jointly Learning to
Align and Translate" (https://arxiv.org/abs/1409.0473), section 3.1 and
appendix A.1.2: e_j = v^T tanh(W s + U h_j), alpha = softmax(e), c = sum_j alpha_j h_j.
Luong, Pham, Manning 2015, "Effective Approaches to Attention-based Neural
Machine Translation" (https://arxiv.org/abs/1508.04025), section 3.1: the
"dot" score q . k_j and the "general" score q . (W k_j).

Shapes: B batch, S source length (number of encoder states), Hq query
(decoder state) dim, Hk key (encoder state) dim, A attention (hidden) dim,
Dv value dim. Weights follow nn.Linear: a weight of shape (out, in) is
applied as x @ W.T.

Masks here are True at a REAL position and False at padding, the convention
of F.scaled_dot_product_attention's bool mask; nn.MultiheadAttention's
key_padding_mask uses the opposite one (True = blocked).
"""

from __future__ import annotations

import torch


def additive_scores(query: torch.Tensor, keys: torch.Tensor, w_q: torch.Tensor,
                    w_k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bahdanau's alignment scores: ``score[b, j] = v . tanh(W_q q_b + W_k k_bj)``.

    query (B, Hq), keys (B, S, Hk), w_q (A, Hq), w_k (A, Hk), v (A,) -> scores (B, S).
    A one-hidden-layer feed-forward net scores every (query, key) pair; the
    scores are unnormalised (no softmax, no mask).
    """
    B, Hq = query.shape
    _, S, Hk = keys.shape
    A = v.shape[0]
    assert keys.shape[0] == B, f"keys have batch size {keys.shape[0]}, query has {B}"
    assert w_q.shape == (A, Hq), f"w_q must be (A, Hq) = ({A}, {Hq}), got {tuple(w_q.shape)}"
    assert w_k.shape == (A, Hk), f"w_k must be (A, Hk) = ({A}, {Hk}), got {tuple(w_k.shape)}"
    # Project the query once and every key once (the keys' part can be cached
    # across decoder steps: it does not depend on the query).
    q_proj = query @ w_q.T  # (B, Hq) @ (Hq, A) -> (B, A)
    k_proj = keys @ w_k.T  # (B, S, Hk) @ (Hk, A) -> (B, S, A)
    # Broadcast the query over the S positions; tanh is the net's hidden layer.
    hidden = torch.tanh(q_proj[:, None, :] + k_proj)  # (B, S, A)
    # v reads one number out of each hidden vector.
    return hidden @ v  # (B, S, A) @ (A,) -> (B, S)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over S of the real positions only.

    scores (B, S), mask (B, S) bool with True = a REAL position (attend to it),
    False = padding -> weights (B, S). Each row sums to 1 over its real
    positions; padded positions get exactly 0. A row with no real position
    gives all zeros (and zero gradient), never nan. Stable for scores of
    magnitude 1e4.
    """
    assert mask.dtype == torch.bool, f"mask must be bool (True = real position), got {mask.dtype}"
    assert mask.shape == scores.shape, f"mask {tuple(mask.shape)} and scores {tuple(scores.shape)} differ"
    # -inf before the softmax makes exp give exactly 0 at pads, and the
    # normaliser then sums over real positions only.
    masked = scores.masked_fill(~mask, float("-inf"))  # (B, S)
    # A row with no real position is all -inf and its softmax 0/0 = nan (in the
    # backward pass too): give it finite stand-in scores, zero it at the end.
    empty = ~mask.any(dim=-1, keepdim=True)  # (B, 1)
    masked = masked.masked_fill(empty, 0.0)
    # Subtract the row max so exp never overflows; softmax is shift invariant.
    shifted = masked - masked.amax(dim=-1, keepdim=True)  # (B, S), <= 0, -inf at pads
    e = shifted.exp()
    weights = e / e.sum(dim=-1, keepdim=True)  # (B, S)
    return weights.masked_fill(empty, 0.0)


def bahdanau_attention(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                       w_q: torch.Tensor, w_k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoder step of additive attention: scores, masked softmax, weighted sum.

    query (B, Hq), keys (B, S, Hk), values (B, S, Dv), mask (B, S) bool with
    True = a REAL position, w_q (A, Hq), w_k (A, Hk), v (A,) ->
    context (B, Dv) = sum_j weights[:, j] * values[:, j], weights (B, S).
    A row with no real position gives zero weights and a zero context.
    """
    B, S, Dv = values.shape
    assert keys.shape[:2] == (B, S), f"keys {tuple(keys.shape)} and values {tuple(values.shape)} need the same (B, S)"
    scores = additive_scores(query, keys, w_q, w_k, v)  # (B, S)
    weights = masked_softmax(scores, mask)  # (B, S)
    # The context mixes the VALUES (in Bahdanau's model, the same encoder states as the keys).
    # (B, 1, S) @ (B, S, Dv) -> (B, 1, Dv)
    context = (weights[:, None, :] @ values).squeeze(1)  # (B, Dv)
    return context, weights


def luong_scores(query: torch.Tensor, keys: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """Luong's multiplicative scores: "dot" ``q . k_j`` (w None) or "general" ``q . (W k_j)``.

    query (B, Hq), keys (B, S, Hk), w (Hq, Hk) or None -> scores (B, S).
    "dot" needs Hq == Hk. Unscaled: no 1/sqrt(H) (that is the Transformer's).
    """
    B, Hq = query.shape
    _, S, Hk = keys.shape
    if w is None:
        assert Hq == Hk, f"the dot score needs Hq == Hk, got Hq={Hq}, Hk={Hk}; pass w for the general score"
    else:
        assert w.shape == (Hq, Hk), f"w must be (Hq, Hk) = ({Hq}, {Hk}), got {tuple(w.shape)}"
        # W k_j for every j at once: map each key into the query's space.
        keys = keys @ w.T  # (B, S, Hk) @ (Hk, Hq) -> (B, S, Hq)
    # (B, S, Hq) @ (B, Hq, 1) -> (B, S, 1)
    return (keys @ query[:, :, None]).squeeze(-1)  # (B, S)
