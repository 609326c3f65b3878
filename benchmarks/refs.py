"""The `references` group: each reference function against the PyTorch built-in it equals.

    python -m benchmarks --only references [--quick] [--device cuda]

Every case builds one problem at a realistic size (stated in the output), checks
that the reference and the built-in give the same output, then times both
forward (under torch.no_grad) and forward + backward (the backward of a fixed
random gradient of the output, into the inputs and the weights), in alternating
turns. Ratio = reference time / built-in time, the median over repeats.
The built-ins run as a user would run them: nn modules in eval mode (dropout 0),
so PyTorch may pick its fused fast paths (on the CPU, F.scaled_dot_product_attention
runs a flash-attention kernel that never materialises the (L, S) matrix; an extra
row, for information, compares with its math backend, which does as the reference).
``CASES`` is shared with the `scaling` and `memory` groups.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from benchmarks.common import Figure, interleaved, median, paired_ratio


def reference(topic: str):
    """reference/TOPIC.py, imported as a module from the repository root."""
    return importlib.import_module(f"reference.{topic}")


@dataclass
class Problem:
    """One problem: the reference and the built-in as zero-argument forwards returning the output to train."""

    ref: Callable[[], torch.Tensor]
    builtin: Callable[[], torch.Tensor]
    leaves: list[torch.Tensor]  # inputs and weights that receive gradients (shared by both sides)
    sizes: str


@dataclass
class Case:
    name: str  # the reference function
    builtin: str  # what it is compared with
    target: float | None  # highest acceptable ratio reference / built-in (None: for information)
    dim: str  # the size that `scaling` grows: "T" or "L"
    n: int  # that size in the `references` benchmark
    scale: tuple[int, ...]  # sizes for `scaling`
    make: Callable[[int, bool, str], Problem]  # (size, small batch for scaling, device) -> Problem


def randomized(module: nn.Module) -> nn.Module:
    """Random weights and biases (PyTorch starts biases at 0 and norms at 1), eval mode."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) / math.sqrt(p.shape[1]) if p.dim() == 2 else torch.randn_like(p) * 0.5)
    return module.eval()


def leaf(*shape, device: str) -> torch.Tensor:
    return torch.randn(*shape, device=device).requires_grad_(True)


# -- the cases ------------------------------------------------------------------------------------

def sdpa(L: int, small: bool, device: str) -> Problem:
    B, H, E = (1 if small else 8), 8, 64
    q, k, v = (leaf(B, H, L, E, device=device) for _ in range(3))
    ref = reference("sdpa")
    return Problem(lambda: ref.scaled_dot_product_attention(q, k, v),
                   lambda: F.scaled_dot_product_attention(q, k, v), [q, k, v], f"B={B} H={H} L=S={L} E={E}")


def sdpa_math(L: int, small: bool, device: str) -> Problem:
    """The same problem against the built-in's math backend, which materialises (L, S) as the reference does."""
    problem = sdpa(L, small, device)
    fused = problem.builtin

    def builtin():
        with sdpa_kernel(SDPBackend.MATH):
            return fused()

    return Problem(problem.ref, builtin, problem.leaves, problem.sizes)


def mha(L: int, small: bool, device: str) -> Problem:
    B, D, H = (1 if small else 8), 256, 8
    m = randomized(nn.MultiheadAttention(D, H, batch_first=True, device=device))
    x = leaf(B, L, D, device=device)
    ref = reference("transformer")
    # Self-attention; need_weights=True (the default) since the reference always returns the weights.
    return Problem(lambda: ref.multi_head_attention(x, x, x, H, m.in_proj_weight, m.in_proj_bias,
                                                    m.out_proj.weight, m.out_proj.bias)[0],
                   lambda: m(x, x, x)[0], [x, *m.parameters()], f"B={B} L=S={L} D={D} H={H}")


def encoder(T: int, small: bool, device: str) -> Problem:
    B, D, H, Fd = (1 if small else 8), 256, 8, 1024
    m = randomized(nn.TransformerEncoderLayer(D, H, Fd, dropout=0.0, batch_first=True, device=device))
    params = dict(m.named_parameters())  # the state_dict's tensors, as the reference's `params`
    x = leaf(B, T, D, device=device)
    ref = reference("transformer")
    return Problem(lambda: ref.encoder_layer(x, params, H), lambda: m(x), [x, *params.values()],
                   f"B={B} T={T} D={D} H={H} F={Fd}, post-norm")


def decoder(L: int, small: bool, device: str) -> Problem:
    B, D, H, Fd = (1 if small else 8), 256, 8, 1024
    m = randomized(nn.TransformerDecoderLayer(D, H, Fd, dropout=0.0, batch_first=True, device=device))
    params = dict(m.named_parameters())
    x, memory = leaf(B, L, D, device=device), leaf(B, L, D, device=device)
    ref = reference("transformer")
    mask = ref.causal_mask(L).to(device)  # (L, L) float, -inf above the diagonal
    return Problem(lambda: ref.decoder_layer(x, memory, params, H, tgt_mask=mask),
                   lambda: m(x, memory, tgt_mask=mask), [x, memory, *params.values()],
                   f"B={B} L=S={L} D={D} H={H} F={Fd}, post-norm, causal tgt_mask")


def layer_norm(T: int, small: bool, device: str) -> Problem:
    B, D = (1 if small else 32), 512
    x, w, b = leaf(B, T, D, device=device), leaf(D, device=device), leaf(D, device=device)
    ref = reference("transformer")
    return Problem(lambda: ref.layer_norm(x, w, b), lambda: F.layer_norm(x, (D,), w, b), [x, w, b],
                   f"B={B} T={T} D={D}")


def _recurrent(kind: str, T: int, small: bool, device: str) -> Problem:
    B, D, H = (8 if small else 32), 128, 256
    m = randomized((nn.LSTM if kind == "lstm" else nn.GRU)(D, H, batch_first=True, device=device))
    w = (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
    x, h0, c0 = leaf(B, T, D, device=device), torch.randn(B, H, device=device), torch.randn(B, H, device=device)
    ref = reference("lstm_gru")
    if kind == "lstm":
        return Problem(lambda: ref.lstm_layer(x, h0, c0, *w)[0], lambda: m(x, (h0[None], c0[None]))[0],
                       [x, *w], f"B={B} T={T} D={D} H={H}")
    return Problem(lambda: ref.gru_layer(x, h0, *w)[0], lambda: m(x, h0[None])[0], [x, *w],
                   f"B={B} T={T} D={D} H={H}")


def bilstm(T: int, small: bool, device: str) -> Problem:
    B, D, H = (8 if small else 16), 128, 256
    m = randomized(nn.LSTM(D, H, batch_first=True, bidirectional=True, device=device))
    fwd = (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
    bwd = (m.weight_ih_l0_reverse, m.weight_hh_l0_reverse, m.bias_ih_l0_reverse, m.bias_hh_l0_reverse)
    x = leaf(B, T, D, device=device)
    lengths = torch.randint(T // 2, T + 1, (B,))
    lengths[0] = T  # the longest fills the padded length, as pad_sequence makes it
    ref = reference("birnn")

    def builtin():
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(m(packed)[0], batch_first=True, total_length=T)[0]

    return Problem(lambda: ref.bidirectional_lstm(x, lengths, fwd, bwd)[0], builtin, [x, *fwd, *bwd],
                   f"B={B} T={T} D={D} H={H}, lengths in [T/2, T], packed nn.LSTM")


def ctc(T: int, small: bool, device: str) -> Problem:
    B, C, S = 16, 30, (20 if small else 40)
    lp = torch.randn(T, B, C, device=device).log_softmax(-1).detach().requires_grad_(True)
    targets = torch.randint(1, C, (B, S), device=device)
    input_lengths = torch.full((B,), T, dtype=torch.long)
    target_lengths = torch.full((B,), S, dtype=torch.long)
    ref = reference("ctc")
    return Problem(lambda: ref.ctc_loss(lp, targets, input_lengths, target_lengths),
                   lambda: F.ctc_loss(lp, targets, input_lengths, target_lengths), [lp],
                   f"T={T} B={B} C={C} S={S}, reduction=mean")


CASES = {c.name: c for c in [
    Case("scaled_dot_product_attention", "F.scaled_dot_product_attention", 1.5, "L", 256,
         (64, 128, 256, 512, 1024), sdpa),
    Case("scaled_dot_product_attention (math backend)", "F.scaled_dot_product_attention, SDPBackend.MATH", None,
         "L", 256, (64, 128, 256, 512, 1024), sdpa_math),
    Case("multi_head_attention", "nn.MultiheadAttention", 1.5, "L", 128, (64, 128, 256, 512, 1024), mha),
    Case("encoder_layer", "nn.TransformerEncoderLayer", 1.5, "T", 128, (64, 128, 256, 512), encoder),
    Case("decoder_layer", "nn.TransformerDecoderLayer", 1.5, "L", 128, (64, 128, 256, 512), decoder),
    Case("layer_norm", "F.layer_norm", 3.0, "T", 128, (64, 128, 256, 512), layer_norm),
    Case("lstm_layer", "nn.LSTM", 3.0, "T", 100, (50, 100, 200, 400),
         lambda T, small, device: _recurrent("lstm", T, small, device)),
    Case("gru_layer", "nn.GRU", 3.0, "T", 100, (50, 100, 200, 400),
         lambda T, small, device: _recurrent("gru", T, small, device)),
    Case("bidirectional_lstm", "packed bidirectional nn.LSTM", 4.0, "T", 100, (50, 100, 200, 400), bilstm),
    Case("ctc_loss", "F.ctc_loss", 5.0, "T", 200, (50, 100, 200, 400), ctc),
]}


# -- timing ----------------------------------------------------------------------------------------

def forward(fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
    def run():
        with torch.no_grad():
            fn()
    return run


def training_step(fn: Callable[[], torch.Tensor], leaves: list[torch.Tensor]) -> Callable[[], None]:
    """Forward, then backward of a fixed random output gradient; gradients are dropped between calls."""
    with torch.no_grad():
        grad = torch.randn_like(fn())

    def run():
        for t in leaves:
            t.grad = None
        fn().backward(grad)
    return run


def check_same(problem: Problem, name: str) -> None:
    """The comparison only means something if both sides compute the same thing."""
    with torch.no_grad():
        got, want = problem.ref(), problem.builtin()
    torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3, msg=lambda m: f"{name}: reference != built-in: {m}")


def sync_for(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def time_pair(problem: Problem, mode: str, repeats: int, block_s: float, device: str) -> dict[str, list[float]]:
    """Seconds per call of the reference and the built-in, in `mode` "forward" or "forward+backward"."""
    if mode == "forward":
        fns = {"reference": forward(problem.ref), "builtin": forward(problem.builtin)}
    else:
        fns = {"reference": training_step(problem.ref, problem.leaves),
               "builtin": training_step(problem.builtin, problem.leaves)}
    return interleaved(fns, repeats, block_s, sync_for(device))


MODES = ("forward", "forward+backward")


def run(quick: bool, device: str = "cpu") -> tuple[list[Figure], dict]:
    torch.manual_seed(0)
    repeats, block_s = (5, 0.1) if quick else (9, 0.25)
    figures = []
    for case in CASES.values():
        problem = case.make(case.n, False, device)
        check_same(problem, case.name)
        for mode in MODES:
            t = time_pair(problem, mode, repeats, block_s, device)
            ratio = paired_ratio(t["reference"], t["builtin"])
            ref_ms, builtin_ms = (1e3 * median(t[k]) for k in ("reference", "builtin"))
            figures.append(Figure(
                "references", f"{case.name} {mode}", ratio, case.target,
                detail=f"vs {case.builtin}; {problem.sizes}; {ref_ms:.2f} ms vs {builtin_ms:.2f} ms",
                data={"reference_s": t["reference"], "builtin_s": t["builtin"], "sizes": problem.sizes,
                      "builtin": case.builtin, "mode": mode, "device": device}))
    info = {"method": f"{device}, float32, torch threads {torch.get_num_threads()}; median over {repeats} repeats "
                      "of reference/built-in per-call time, measured in alternating turns, each sample about "
                      f"{block_s}s of calls after a warm-up; forward under torch.no_grad, forward+backward "
                      "= backward of a fixed random output gradient into the inputs and weights"}
    return figures, info
