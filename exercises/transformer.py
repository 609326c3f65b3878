# Exercise stub: fill in each function, then run `seqlings check transformer`.
"""Transformer blocks written out by hand: positional encoding, layer norm, multi-head attention, layers.

Vaswani et al. 2017, "Attention Is All You Need", sections 3.1-3.5. Each function
equals its PyTorch counterpart in eval mode (dropout off):
  F.layer_norm                  https://pytorch.org/docs/stable/generated/torch.nn.functional.layer_norm.html
  nn.MultiheadAttention         https://pytorch.org/docs/stable/generated/torch.nn.MultiheadAttention.html
  nn.TransformerEncoderLayer    https://pytorch.org/docs/stable/generated/torch.nn.TransformerEncoderLayer.html
  nn.TransformerDecoderLayer    https://pytorch.org/docs/stable/generated/torch.nn.TransformerDecoderLayer.html
norm_first=True is the pre-norm layer of Xiong et al. 2020, "On Layer Normalization in the
Transformer Architecture".

Masks follow nn.MultiheadAttention everywhere in this file: a bool mask is True where
attention is BLOCKED, a float mask is ADDED to the scores (-inf blocks). This is the
opposite of F.scaled_dot_product_attention, whose bool masks are True where attention
is allowed.

Shapes: B batch, L query (target) length, S key (source) length, T sequence length,
D model dim (embed_dim, d_model), H heads (num_heads), E = D // H head dim,
F feed-forward dim. Weights follow nn.Linear: W (out, in) is applied as x @ W.T.
"""

from __future__ import annotations

import math

import torch


def sinusoidal_positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """The (max_len, d_model) sinusoidal table of Vaswani et al. 2017, section 3.5.

    PE[p, 2i] = sin(p / 10000^(2i/d_model)), PE[p, 2i+1] = cos(p / 10000^(2i/d_model)):
    columns 2i and 2i+1 share one frequency. An odd d_model is allowed (the last
    column is a sine). Returned in torch's default dtype (float32) on the CPU.
    """
    # TODO: fill even columns 2i with sin(p / 10000^(2i/d_model)) and odd columns 2i+1
    #       with cos of the same angle; odd d_model allowed.
    # Shapes: (max_len=50, d_model=16) -> (50, 16)
    raise NotImplementedError


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise over the last dim, then scale and shift; equals ``F.layer_norm(x, (D,), weight, bias, eps)``.

    x (..., D), weight (D,), bias (D,) -> (..., D).
    y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance
    (divide by D, not D - 1) and eps inside the square root.
    """
    # TODO: subtract the mean over the last dim, divide by sqrt(biased variance + eps),
    #       then scale by weight and shift by bias.
    # Shapes: x (B, T, D), weight (D,), bias (D,) -> (B, T, D)
    raise NotImplementedError


def feed_forward(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                 b2: torch.Tensor) -> torch.Tensor:
    """The position-wise feed-forward block relu(x W1 + b1) W2 + b2 (section 3.3), nn.Linear layout.

    x (..., D), w1 (F, D), b1 (F,), w2 (D, F), b2 (D,) -> (..., D); computed as
    relu(x @ w1.T + b1) @ w2.T + b2, like linear2(relu(linear1(x))).
    """
    # TODO: apply linear1, ReLU, linear2 with weights in nn.Linear layout: relu(x @ w1.T
    #       + b1) @ w2.T + b2.
    # Shapes: x (B, T, D), w1 (F, D), b1 (F,), w2 (D, F), b2 (D,) -> (B, T, D)
    raise NotImplementedError


def multi_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int,
                         in_proj_weight: torch.Tensor, in_proj_bias: torch.Tensor,
                         out_proj_weight: torch.Tensor, out_proj_bias: torch.Tensor,
                         key_padding_mask: torch.Tensor | None = None,
                         attn_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head attention; equals ``nn.MultiheadAttention(D, num_heads, batch_first=True)``.

    query (B, L, D), key (B, S, D), value (B, S, D); in_proj_weight (3D, D) stacks
    W_q, W_k, W_v (in that order), in_proj_bias (3D,); out_proj_weight (D, D),
    out_proj_bias (D,). Returns (out (B, L, D), weights (B, L, S)): the weights are
    averaged over the heads (need_weights=True, average_attn_weights=True).

    Masks follow nn.MultiheadAttention: a bool mask is True where attention is
    BLOCKED, a float mask is added to the scores. key_padding_mask (B, S) blocks
    padded keys; attn_mask is (L, S), or (B * H, L, S) with row b * H + h for
    batch b, head h. A query row with every key blocked gives nan, as PyTorch does.
    """
    # TODO: project with in_proj (W_q, W_k, W_v stacked), split into H heads, scaled
    #       dot-product attention per head with the masks (True = blocked) added, merge
    #       the heads, apply out_proj; return the output and the head-averaged weights.
    # Shapes: query (B, L, D), key/value (B, S, D), in_proj_weight (3D, D) -> out (B, L, D), weights (B, L, S)
    raise NotImplementedError


def causal_mask(size: int) -> torch.Tensor:
    """A (size, size) float mask, 0 on and below the diagonal, -inf above it.

    Equals ``nn.Transformer.generate_square_subsequent_mask(size)``: position i may
    attend to positions 0..i. It is a float mask, added to the scores, so it means
    the same to nn.MultiheadAttention and to F.scaled_dot_product_attention.
    Returned in torch's default dtype (float32) on the CPU, as PyTorch does.
    """
    # TODO: build a float mask with 0 on and below the diagonal and -inf above it.
    # Shapes: size=4 -> (4, 4)
    raise NotImplementedError


def encoder_layer(x: torch.Tensor, params: dict, num_heads: int,
                  src_key_padding_mask: torch.Tensor | None = None, norm_first: bool = False) -> torch.Tensor:
    """One encoder layer; equals ``nn.TransformerEncoderLayer(D, num_heads, F, batch_first=True)`` in eval mode.

    x (B, T, D) -> (B, T, D). ``params`` is that module's state_dict(): self_attn.in_proj_weight,
    self_attn.in_proj_bias, self_attn.out_proj.weight/.bias, linear1.weight/.bias,
    linear2.weight/.bias, norm1.weight/.bias, norm2.weight/.bias (eps 1e-5, ReLU).
    src_key_padding_mask (B, T) is True at padded positions (BLOCKED as keys).
    Post-norm (norm_first=False): x = norm1(x + attn(x)); x = norm2(x + ff(x)).
    Pre-norm (norm_first=True): x = x + attn(norm1(x)); x = x + ff(norm2(x)).
    """
    # TODO: self-attention and feed-forward sub-layers, each with a residual and a layer
    #       norm (after it for post-norm, before it for norm_first=True), weights from
    #       params[...].
    # Shapes: x (B, T, D), params = nn.TransformerEncoderLayer.state_dict() -> (B, T, D)
    raise NotImplementedError


def decoder_layer(x: torch.Tensor, memory: torch.Tensor, params: dict, num_heads: int,
                  tgt_mask: torch.Tensor | None = None, memory_key_padding_mask: torch.Tensor | None = None,
                  norm_first: bool = False) -> torch.Tensor:
    """One decoder layer; equals ``nn.TransformerDecoderLayer(D, num_heads, F, batch_first=True)`` in eval mode.

    x (B, L, D), memory (B, S, D) -> (B, L, D). ``params`` is that module's state_dict():
    self_attn.*, multihead_attn.* (cross-attention), linear1.*, linear2.*, norm1.*,
    norm2.*, norm3.*. tgt_mask (L, L) masks the self-attention (e.g. causal_mask(L));
    memory_key_padding_mask (B, S) is True at padded memory positions, used only by
    the cross-attention. Masks follow nn.MultiheadAttention: bool True = BLOCKED.
    Post-norm: x = norm1(x + self_attn(x)); x = norm2(x + cross_attn(x, memory)); x = norm3(x + ff(x)).
    Pre-norm: x = x + self_attn(norm1(x)); x = x + cross_attn(norm2(x), memory); x = x + ff(norm3(x));
    the memory itself is never normalised here (the encoder already did).
    """
    # TODO: masked self-attention, cross-attention over memory, feed-forward, each with
    #       a residual and a layer norm (post-norm or pre-norm), weights from
    #       params[...].
    # Shapes: x (B, L, D), memory (B, S, D), params = nn.TransformerDecoderLayer.state_dict() -> (B, L, D)
    raise NotImplementedError
