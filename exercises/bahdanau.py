# Exercise stub: fill in each function, then run `seqlings check bahdanau`.
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
    # TODO: project the query with w_q and every key with w_k (x @ W.T), add them with
    #       the query broadcast over S, apply tanh, then take the dot product with v.
    # Shapes: query (B, Hq), keys (B, S, Hk) -> (B, A) + (B, S, A) -> (B, S)
    raise NotImplementedError


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over S of the real positions only.

    scores (B, S), mask (B, S) bool with True = a REAL position (attend to it),
    False = padding -> weights (B, S). Each row sums to 1 over its real
    positions; padded positions get exactly 0. A row with no real position
    gives all zeros (and zero gradient), never nan. Stable for scores of
    magnitude 1e4.
    """
    # TODO: fill padded positions (mask False) with -inf, subtract each row's max,
    #       exponentiate and normalise over S; rows with no real position give zeros,
    #       not nan.
    # Shapes: scores (B, S), mask (B, S) -> (B, S)
    raise NotImplementedError


def bahdanau_attention(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                       w_q: torch.Tensor, w_k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoder step of additive attention: scores, masked softmax, weighted sum.

    query (B, Hq), keys (B, S, Hk), values (B, S, Dv), mask (B, S) bool with
    True = a REAL position, w_q (A, Hq), w_k (A, Hk), v (A,) ->
    context (B, Dv) = sum_j weights[:, j] * values[:, j], weights (B, S).
    A row with no real position gives zero weights and a zero context.
    """
    # TODO: additive scores, then the masked softmax, then the weighted sum of the
    #       values.
    # Shapes: (B, S) weights, (B, 1, S) @ (B, S, Dv) -> context (B, Dv)
    raise NotImplementedError


def luong_scores(query: torch.Tensor, keys: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """Luong's multiplicative scores: "dot" ``q . k_j`` (w None) or "general" ``q . (W k_j)``.

    query (B, Hq), keys (B, S, Hk), w (Hq, Hk) or None -> scores (B, S).
    "dot" needs Hq == Hk. Unscaled: no 1/sqrt(H) (that is the Transformer's).
    """
    # TODO: dot: q . k_j for every j; general: map each key with W first (W k_j, i.e.
    #       keys @ w.T), then the dot product with q.
    # Shapes: query (B, Hq), keys (B, S, Hk), w (Hq, Hk) -> (B, S)
    raise NotImplementedError
