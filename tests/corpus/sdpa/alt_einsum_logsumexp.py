"""A correct sdpa in another style: einsum for the products, logsumexp for the softmax."""

import torch


def softmax(x, dim=-1):
    lse = torch.logsumexp(x, dim=dim, keepdim=True)
    return torch.exp(x - lse)


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None):
    E = query.size(-1)
    scale = E ** -0.5 if scale is None else scale
    logits = torch.einsum("...le,...se->...ls", query, key) * scale
    if is_causal:
        L, S = logits.shape[-2:]
        attn_mask = torch.tril(torch.ones(L, S, device=query.device)).bool()
    if attn_mask is not None:
        if attn_mask.dtype is torch.bool:
            logits = torch.where(attn_mask, logits, torch.full_like(logits, -float("inf")))
        else:
            logits = logits + attn_mask
    blocked = torch.isneginf(logits).all(-1, keepdim=True)
    w = softmax(torch.where(blocked, torch.zeros_like(logits), logits), dim=-1)
    return torch.where(blocked, torch.zeros_like(w), w)


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False, scale=None):
    w = attention_weights(query, key, attn_mask=attn_mask, is_causal=is_causal, scale=scale)
    return torch.einsum("...ls,...sv->...lv", w, value)
