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
    assert max_len >= 0 and d_model >= 1, f"need max_len >= 0 and d_model >= 1, got {max_len}, {d_model}"
    # float64 inside: at position 512 a float32 angle is only good to about 3e-5.
    p = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)  # (max_len, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(D/2),) the even column indices
    angle = p / 10000.0 ** (two_i / d_model)  # (max_len, ceil(D/2))
    pe = torch.empty(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    # With an odd d_model there is one sine more than there are cosines.
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.to(torch.get_default_dtype())


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Normalise over the last dim, then scale and shift; equals ``F.layer_norm(x, (D,), weight, bias, eps)``.

    x (..., D), weight (D,), bias (D,) -> (..., D).
    y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance
    (divide by D, not D - 1) and eps inside the square root.
    """
    D = x.shape[-1]
    assert weight.shape == (D,) and bias.shape == (D,), \
        f"weight and bias must be ({D},), got {tuple(weight.shape)} and {tuple(bias.shape)}"
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1)
    # Subtract the mean before squaring: E[x^2] - E[x]^2 cancels to garbage for x near 1e4.
    centred = x - mean  # (..., D)
    var = (centred * centred).mean(dim=-1, keepdim=True)  # (..., 1) biased: / D
    return centred / torch.sqrt(var + eps) * weight + bias


def feed_forward(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                 b2: torch.Tensor) -> torch.Tensor:
    """The position-wise feed-forward block relu(x W1 + b1) W2 + b2 (section 3.3), nn.Linear layout.

    x (..., D), w1 (F, D), b1 (F,), w2 (D, F), b2 (D,) -> (..., D); computed as
    relu(x @ w1.T + b1) @ w2.T + b2, like linear2(relu(linear1(x))).
    """
    hidden = torch.relu(x @ w1.T + b1)  # (..., F)
    return hidden @ w2.T + b2  # (..., D)


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A mask in nn.MultiheadAttention's convention as a float mask to add to the scores."""
    if mask.dtype == torch.bool:
        # True means BLOCKED here (the opposite of F.scaled_dot_product_attention).
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    return mask.to(dtype)


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
    B, L, D = query.shape
    S = key.shape[1]
    H = num_heads
    assert D % H == 0, f"embed dim D={D} must be divisible by num_heads={H}"
    E = D // H
    w_q, w_k, w_v = in_proj_weight.chunk(3, dim=0)  # each (D, D)
    b_q, b_k, b_v = in_proj_bias.chunk(3, dim=0)  # each (D,)
    # Split D into H heads of E features, then make the heads a batch dim.
    q = (query @ w_q.T + b_q).view(B, L, H, E).transpose(1, 2)  # (B, H, L, E)
    k = (key @ w_k.T + b_k).view(B, S, H, E).transpose(1, 2)  # (B, H, S, E)
    v = (value @ w_v.T + b_v).view(B, S, H, E).transpose(1, 2)  # (B, H, S, E)
    # Scale by the HEAD dim E: each head's dot product sums E terms.
    # (B, H, L, E) @ (B, H, E, S) -> (B, H, L, S)
    scores = q @ k.transpose(-2, -1) / math.sqrt(E)
    if attn_mask is not None:
        mask = _additive(attn_mask, scores.dtype)
        scores = scores + (mask.view(B, H, L, S) if mask.dim() == 3 else mask)  # (L, S) broadcasts
    if key_padding_mask is not None:
        scores = scores + _additive(key_padding_mask, scores.dtype).view(B, 1, 1, S)
    weights = torch.softmax(scores, dim=-1)  # (B, H, L, S), normalised over the keys
    # (B, H, L, S) @ (B, H, S, E) -> (B, H, L, E), then the heads side by side again
    heads = (weights @ v).transpose(1, 2).reshape(B, L, D)  # (B, L, D)
    out = heads @ out_proj_weight.T + out_proj_bias  # (B, L, D)
    return out, weights.mean(dim=1)  # (B, L, D), (B, L, S)


def causal_mask(size: int) -> torch.Tensor:
    """A (size, size) float mask, 0 on and below the diagonal, -inf above it.

    Equals ``nn.Transformer.generate_square_subsequent_mask(size)``: position i may
    attend to positions 0..i. It is a float mask, added to the scores, so it means
    the same to nn.MultiheadAttention and to F.scaled_dot_product_attention.
    Returned in torch's default dtype (float32) on the CPU, as PyTorch does.
    """
    return torch.full((size, size), float("-inf")).triu(diagonal=1)  # (T, T)


def _attention_block(x: torch.Tensor, kv: torch.Tensor, params: dict, prefix: str, num_heads: int,
                     key_padding_mask: torch.Tensor | None, attn_mask: torch.Tensor | None) -> torch.Tensor:
    """The attention sub-layer whose weights are params[prefix + ...]; returns its (B, L, D) output."""
    out, _ = multi_head_attention(x, kv, kv, num_heads, params[prefix + "in_proj_weight"],
                                  params[prefix + "in_proj_bias"], params[prefix + "out_proj.weight"],
                                  params[prefix + "out_proj.bias"], key_padding_mask=key_padding_mask,
                                  attn_mask=attn_mask)
    return out


def _ff_block(x: torch.Tensor, params: dict) -> torch.Tensor:
    return feed_forward(x, params["linear1.weight"], params["linear1.bias"],
                        params["linear2.weight"], params["linear2.bias"])


def _norm(x: torch.Tensor, params: dict, name: str) -> torch.Tensor:
    return layer_norm(x, params[name + ".weight"], params[name + ".bias"], eps=1e-5)


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
    def attn(h):
        return _attention_block(h, h, params, "self_attn.", num_heads, src_key_padding_mask, None)

    if norm_first:
        # Pre-norm: the residual path stays un-normalised from input to output.
        x = x + attn(_norm(x, params, "norm1"))
        return x + _ff_block(_norm(x, params, "norm2"), params)
    x = _norm(x + attn(x), params, "norm1")
    return _norm(x + _ff_block(x, params), params, "norm2")


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
    def self_attn(h):
        return _attention_block(h, h, params, "self_attn.", num_heads, None, tgt_mask)

    def cross_attn(h):
        # Queries from the decoder, keys and values from the encoder's memory.
        return _attention_block(h, memory, params, "multihead_attn.", num_heads, memory_key_padding_mask, None)

    if norm_first:
        x = x + self_attn(_norm(x, params, "norm1"))
        x = x + cross_attn(_norm(x, params, "norm2"))
        return x + _ff_block(_norm(x, params, "norm3"), params)
    x = _norm(x + self_attn(x), params, "norm1")
    x = _norm(x + cross_attn(x), params, "norm2")
    return _norm(x + _ff_block(x, params), params, "norm3")
