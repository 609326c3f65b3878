"""Grader for `ctc`: collapsing paths, greedy decoding, the CTC loss and prefix beam search.

Expected values come from F.ctc_loss (value, and gradient through log_softmax)
and, for the decoders, from enumerating all C^T paths here in the grader's
process. The wrong variants below are the mistakes learners make, used only to
name the likely cause of a mismatch; the forward algorithm in this file exists
only to build them.

Gradients (errata 9): F.ctc_loss's gradient with respect to log_probs is not
the true derivative; it is right only after flowing back through log_softmax.
So the submission gets log_probs as a leaf, its autograd gives the true
d loss / d log_probs, and both sides are compared with respect to the logits:
for log_probs = log_softmax(logits), d/d logits = g - softmax(logits) * g.sum(-1).

Shapes: T frames, B batch, C classes (blank included), S longest target, K rank.
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from grader.compare import TOLERANCES, assert_close, describe_mismatch
from grader.sandbox import SubmissionError

f64, f32 = torch.float64, torch.float32
INF = math.inf


def long(values):
    return torch.tensor(values, dtype=torch.long)


def collapse(path, blank=0):
    """Merge repeats, then drop blanks: the grader's own, for expected values."""
    return [int(p) for i, p in enumerate(path) if p != blank and (i == 0 or p != path[i - 1])]


def collapse_blanks_first(path, blank=0):
    """The common mistake: drop blanks first, then merge repeats."""
    kept = [p for p in path if p != blank]
    return [int(p) for i, p in enumerate(kept) if i == 0 or p != kept[i - 1]]


# -- checking labelings (lists of ints) -----------------------------------------------

def as_labels(x, name):
    """A labeling as a list of ints; tuples and 1-D integer tensors are accepted too."""
    if isinstance(x, torch.Tensor) and x.dim() == 1 and not x.is_floating_point():
        return [int(v) for v in x.tolist()]
    if isinstance(x, (list, tuple)) and all(
            isinstance(v, int) or (isinstance(v, torch.Tensor) and v.dim() == 0 and not v.is_floating_point())
            for v in x):
        return [int(v) for v in x]
    raise AssertionError(f"{name}: expected a list of ints, got {type(x).__name__}: {x!r}")


def check_labels(got, want, name, variants=None):
    got = as_labels(got, name)
    if got == want:
        return
    cause = next((c for c, v in (variants or {}).items() if v is not None and v != want and got == v), None)
    raise AssertionError(f"{name}: expected {want}, got {got}" + (f"; likely cause: {cause}" if cause else ""))


BLANKS_FIRST = ("blanks were dropped before repeats were merged: merge repeats FIRST, then drop blanks, "
                "so a blank keeps two copies of a label apart (errata 1: 'H _ E _ L L _ O' is HELO)")
NO_MERGE = "repeats were not merged: consecutive copies of a label are one label"
BLANK_IGNORED = "the `blank` argument was ignored: the blank is class `blank`, not always 0"


def collapse_variants(path, blank):
    return {
        BLANKS_FIRST: collapse_blanks_first(path, blank),
        NO_MERGE: [int(p) for p in path if p != blank],
        BLANK_IGNORED: collapse(path, 0) if blank != 0 else None,
    }


# -- ctc_collapse ------------------------------------------------------------------

COLLAPSE_CASES = {
    "[1,1,0,1,2,2] -> [1,1,2]": ([1, 1, 0, 1, 2, 2], 0, [1, 1, 2]),
    "[2,2,2,0,2] -> [2,2]": ([2, 2, 2, 0, 2], 0, [2, 2]),
    "[0,3,0,0,3,3] -> [3,3]": ([0, 3, 0, 0, 3, 3], 0, [3, 3]),
    "all blanks -> []": ([0, 0, 0], 0, []),
    "empty path -> []": ([], 0, []),
    "blank=2: [2,1,1,2,0,0,2] -> [1,0]": ([2, 1, 1, 2, 0, 0, 2], 2, [1, 0]),
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", COLLAPSE_CASES)
def test_collapse_merges_repeats_then_drops_blanks(impl, case):
    path, blank, want = COLLAPSE_CASES[case]
    check_labels(impl.ctc_collapse(path, blank=blank), want, f"ctc_collapse({path}, blank={blank})",
                 variants=collapse_variants(path, blank))


@pytest.mark.public
@pytest.mark.points(2)
def test_the_notes_path_h_e_e_l_l_o_collapses_to_helo_not_hello(impl):
    # H=1 E=2 L=3 O=4, blank 0. Errata 1: the notes claim HELLO; merging first gives HELO.
    path = [1, 0, 2, 0, 3, 3, 0, 4]
    check_labels(impl.ctc_collapse(path), [1, 2, 3, 4], "ctc_collapse('H _ E _ L L _ O') (H=1 E=2 L=3 O=4)",
                 variants=collapse_variants(path, 0))
    path = [1, 2, 3, 0, 3, 4]
    check_labels(impl.ctc_collapse(path), [1, 2, 3, 3, 4], "ctc_collapse('H E L _ L O') (H=1 E=2 L=3 O=4)",
                 variants=collapse_variants(path, 0))


@pytest.mark.points(1)
def test_collapse_accepts_a_1d_tensor_and_returns_ints(impl):
    path = [0, 1, 1, 0, 1, 2, 2, 0]
    check_labels(impl.ctc_collapse(long(path)), [1, 1, 2], "ctc_collapse(torch.tensor([0,1,1,0,1,2,2,0]))",
                 variants=collapse_variants(path, 0))


# -- ctc_greedy_decode ---------------------------------------------------------------

def peaked(paths, C, T, dtype=f64):
    """log_probs (T, B, C) whose argmax at frame t of sequence b is paths[b][t]."""
    logits = torch.randn(T, len(paths), C, dtype=dtype) * 0.3
    for b, path in enumerate(paths):
        for t, c in enumerate(path):
            logits[t, b, c] += 4.0
    return logits.log_softmax(-1)


def greedy(log_probs, lengths, blank=0):
    best = log_probs.argmax(-1)
    return [collapse(best[: n, b].tolist(), blank) for b, n in enumerate(lengths)]


def check_decoded(got, log_probs, lengths, blank, name):
    want = greedy(log_probs, lengths, blank)
    T = log_probs.shape[0]
    if not isinstance(got, (list, tuple)) or len(got) != len(want):
        raise AssertionError(f"{name}: expected a list of {len(want)} labelings (one per sequence), got {got!r}")
    full = greedy(log_probs, [T] * len(lengths), blank)
    best = log_probs.argmax(-1)
    for b in range(len(want)):
        path = best[: lengths[b], b].tolist()
        check_labels(got[b], want[b], f"{name}, sequence b={b} (input length {lengths[b]} of T={T})", variants={
            "input_lengths was ignored: decode only the first input_lengths[b] frames, the rest is padding": full[b],
            **collapse_variants(path, blank)})


@pytest.mark.public
@pytest.mark.points(2)
def test_greedy_decode_takes_the_best_symbol_per_frame_and_collapses(impl):
    # 'H _ E _ L L _ O' (8 frames) and 'H E L _ L O' (6 frames, then 2 padding frames peaked on O and E).
    paths = [[1, 0, 2, 0, 3, 3, 0, 4], [1, 2, 3, 0, 3, 4, 4, 2]]
    log_probs, lengths = peaked(paths, 5, 8), [8, 6]
    got = impl.ctc_greedy_decode(log_probs, long(lengths))
    check_decoded(got, log_probs, lengths, 0, "ctc_greedy_decode of 'H _ E _ L L _ O' and 'H E L _ L O'")


@pytest.mark.points(2)
@pytest.mark.parametrize("blank", [0, 3])
def test_greedy_decode_stops_at_each_input_length(impl, blank):
    T, C, lengths = 12, 4, [12, 7, 1, 4]
    log_probs = torch.randn(T, len(lengths), C, dtype=f64).mul(2).log_softmax(-1)
    log_probs[:, :, blank] += 0.7  # blanks common enough to separate repeats
    got = impl.ctc_greedy_decode(log_probs, long(lengths), blank=blank)
    check_decoded(got, log_probs, lengths, blank, f"ctc_greedy_decode (blank={blank})")


# -- the CTC loss: a forward algorithm for the wrong variants ---------------------------

def lse(x):
    """log-sum-exp over dim 0, with gradient 0 where every entry is -inf."""
    m = x.detach().amax(0)
    m = torch.where(m.isinf(), torch.zeros_like(m), m)
    s = (x - m).exp().sum(0)
    return torch.where(s > 0, torch.where(s > 0, s, torch.ones_like(s)).log(), torch.full_like(s, -INF)) + m


def forward(lp, targets, il, tl, *, blank=0, reduction="none", zero_infinity=False,
            skip="distinct", end="both", use_lengths=True, mean="per_target"):
    """CTC loss by the forward algorithm, one sequence at a time; the keywords build the mistakes."""
    T = lp.shape[0]
    losses = []
    for b in range(lp.shape[1]):
        ext = [blank]
        for c in targets[b, : int(tl[b])].tolist():
            ext += [c, blank]
        U = len(ext)
        allowed = {"distinct": lambda s: ext[s] != blank and ext[s] != ext[s - 2],
                   "labels": lambda s: ext[s] != blank, "always": lambda s: True, "never": lambda s: False}[skip]
        ok = torch.tensor([s >= 2 and allowed(s) for s in range(U)])
        steps = int(il[b]) if use_lengths else T
        x = lp[:steps, b, ext]  # (steps, U)
        alpha = torch.where(torch.arange(U) < 2, x[0], -INF)
        for t in range(1, steps):
            prev = F.pad(alpha, (1, 0), value=-INF)[:U]
            prev2 = torch.where(ok, F.pad(alpha, (2, 0), value=-INF)[:U], -INF)
            alpha = lse(torch.stack([alpha, prev, prev2])) + x[t]
        losses.append(-lse(alpha[-1:] if end == "blank" or U == 1 else alpha[-2:]))
    losses = torch.stack(losses)
    if zero_infinity:
        losses = torch.where(losses.isinf(), torch.zeros_like(losses), losses)
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        n = tl.clamp(min=1).to(losses.dtype)
        return {"per_target": (losses / n).mean(), "batch": losses.mean(), "total": losses.sum() / n.sum()}[mean]
    return losses


NO_SKIP = ("no s-2 skip: a path may also jump from label l[s-2] straight to a DIFFERENT label l[s], "
           "skipping the blank between them")
SKIP_REPEATS = ("the s-2 skip was allowed between repeated labels: when l[s] == l[s-2] the path must pass "
                "through the blank between them, or the two copies would merge")
SKIP_ALWAYS = "the s-2 skip was allowed into blank states too: only a label state may be reached from s-2"
END_BLANK = ("the loss was read from the trailing blank state 2L only: a complete path may also end in the "
             "last label, state 2L-1, so log-add both")
NO_LENGTHS = ("frames beyond input_lengths were used: stop each sequence's recursion at its own input length "
              "(or keep its alpha unchanged past it)")
MEAN_BATCH = ("reduction='mean' averaged the raw losses: F.ctc_loss first divides each loss by its target "
              "length (clamped to at least 1), then averages over the batch")
MEAN_TOTAL = ("reduction='mean' divided the summed loss by the total target length: F.ctc_loss divides each "
              "loss by its OWN target length, then averages over the batch")
ZI_IGNORED = "zero_infinity=True was ignored: an infinite loss (impossible alignment) must become 0"
ZI_ALWAYS = "infinite losses were zeroed although zero_infinity=False: only zero_infinity=True replaces inf by 0"
UNDERFLOW = ("the forward variables underflowed: over 1000 frames a path prefix has probability about C^-T "
             "(log alpha about -T log C), which is 0 even in float64; stay in log space and subtract the max "
             "inside every log-sum-exp")
NAN_GRAD = ("a log-sum-exp over states that are all -inf (no path reaches them yet) back-propagates "
            "exp(-inf - (-inf)) = nan, and 0 * nan stays nan (torch.logsumexp and torch.logaddexp do this): "
            "shift by 0 where the max is -inf, take the log of a safe 1 where the sum is 0 and put -inf back "
            "with torch.where, so those states get gradient exactly 0")
NAN_VALUE = ("a log-sum-exp subtracted its max when every input was -inf: -inf - (-inf) = nan; shift by 0 "
             "where the max is -inf")
CUT_OFF = ("no gradient reached log_probs: the loss is cut off from it (built with torch.tensor(...), .tolist(), "
           ".item(), .detach() or in-place writes into a tensor made without grad)")


class Batch:
    """One CTC problem: logits (T, B, C) in `dtype`, padded targets (B, S), lengths (B,)."""

    def __init__(self, T, C, targets, input_lengths, dtype=f64, pad=0, blank=0, scale=1.0):
        S = max(1, max(len(t) for t in targets))
        self.logits = (torch.randn(T, len(targets), C, dtype=f64) * scale).to(dtype)
        self.targets = long([list(t) + [pad] * (S - len(t)) for t in targets])
        self.il, self.tl = long(input_lengths), long([len(t) for t in targets])
        self.dtype, self.blank = dtype, blank
        self.lp = self.logits.log_softmax(-1)  # what the submission gets, in `dtype`

    def args(self):
        return self.targets, self.il, self.tl

    def torch_loss(self, lp, reduction, zero_infinity):
        return F.ctc_loss(lp, *self.args(), blank=self.blank, reduction=reduction, zero_infinity=zero_infinity)

    def logit_grad(self, loss_fn, g):
        """d <loss_fn(log_softmax(logits)), g> / d logits, in float64."""
        x = self.logits.to(f64).requires_grad_(True)
        (gx,) = torch.autograd.grad(loss_fn(x.log_softmax(-1)), x, g.to(f64))
        return gx

    def expected(self, reduction, zero_infinity, g):
        value = self.torch_loss(self.logits.to(f64).log_softmax(-1), reduction, zero_infinity)
        grad = None if g is None else self.logit_grad(lambda lp: self.torch_loss(lp, reduction, zero_infinity), g)
        return value.to(self.dtype), None if grad is None else grad.to(self.dtype)

    def variant_knobs(self, reduction, zero_infinity):
        knobs = {NO_SKIP: dict(skip="never"), SKIP_REPEATS: dict(skip="labels"), SKIP_ALWAYS: dict(skip="always"),
                 END_BLANK: dict(end="blank"), NO_LENGTHS: dict(use_lengths=False),
                 (ZI_IGNORED if zero_infinity else ZI_ALWAYS): dict(zero_infinity=not zero_infinity)}
        if reduction == "mean":
            knobs |= {MEAN_BATCH: dict(mean="batch"), MEAN_TOTAL: dict(mean="total")}
        if self.blank != 0:
            knobs[BLANK_IGNORED] = dict(blank=0)
        return knobs

    def variant_loss(self, reduction, zero_infinity, knob):
        kw = dict(blank=self.blank, reduction=reduction, zero_infinity=zero_infinity) | knob
        return lambda lp: forward(lp, *self.args(), **kw)

    def check(self, impl, reduction="mean", zero_infinity=False, grad=True, what=""):
        """Call the submission's ctc_loss; compare its value and (if grad) its gradient with PyTorch's."""
        B = self.logits.shape[1]
        g = None
        if grad:
            g = (torch.rand(B, dtype=f64) + 0.5 if reduction == "none" else torch.tensor(0.7, dtype=f64)).to(self.dtype)
        want, want_grad = self.expected(reduction, zero_infinity, g)
        lp = self.lp.detach().clone().requires_grad_(grad)
        res = impl.call("ctc_loss", lp, *self.args(), blank=self.blank, reduction=reduction,
                        zero_infinity=zero_infinity, grad_outputs=g)
        label = f"ctc_loss(reduction={reduction!r}, zero_infinity={zero_infinity}{what})"
        knobs = self.variant_knobs(reduction, zero_infinity)
        lp64 = self.logits.to(f64).log_softmax(-1)
        variants = {cause: (lambda k=k: self.variant_loss(reduction, zero_infinity, k)(lp64))
                    for cause, k in knobs.items()}
        if self.logits.shape[0] >= 500:
            variants[UNDERFLOW] = lambda: torch.full_like(want, INF)
        check_finite(res.value, want, f"{label} value", "B", NAN_VALUE)
        assert_close(res.value, want, f"{label} value", dims="B" if reduction == "none" else None, **self.tol("value"),
                     variants=variants)
        if not grad:
            return
        got_lp_grad = res.args[0].grad
        if got_lp_grad is None:
            raise AssertionError(f"{label}: {CUT_OFF}")
        # True d/d log_probs -> d/d logits, through log_softmax.
        g_lp = got_lp_grad.to(f64)
        got = (g_lp - self.lp.detach().to(f64).exp() * g_lp.sum(-1, keepdim=True)).to(got_lp_grad.dtype)
        name = f"d {label} / d logits (your gradient w.r.t. log_probs, carried back through log_softmax)"
        grad_variants = {cause: (lambda k=k: self.logit_grad(self.variant_loss(reduction, zero_infinity, k), g))
                         for cause, k in knobs.items()}
        check_finite(got, want_grad, name, "TBC", NAN_GRAD)
        assert_close(got, want_grad, name, dims="TBC", **self.tol("grad"), variants=grad_variants)

    def tol(self, kind):
        # float32 at T=1000: a correct float32 gradient is good to about 1e-3 (PyTorch's own reaches 4e-3).
        if self.dtype == f32 and self.logits.shape[0] >= 500 and kind == "grad":
            return dict(rtol=1e-3, atol=5e-3)
        return {}


def check_finite(got, want, name, dims, cause):
    """A nan where PyTorch's value is finite gets its own likely cause."""
    if isinstance(got, torch.Tensor) and got.shape == want.shape and got.is_floating_point():
        bad = got.isnan() & want.isfinite()
        if bool(bad.any()):
            text = describe_mismatch(got, want, ~bad, name, dims if got.dim() == len(dims) else None)
            raise AssertionError(f"{text}; likely cause: {cause}")


# A batch where input lengths, target lengths and padding all differ: T=12, and no
# sequence uses all 12 frames; target 0 repeats a label, target 2 is empty.
def mixed_batch(dtype=f64, pad=0, blank=0, C=5):
    label = (lambda c: c) if blank == 0 else (lambda c: c - 1)  # with blank=C-1, labels are 0..C-2
    targets = [[label(c) for c in t] for t in ([1, 3, 3, 2, 4], [2, 1], [], [4, 4, 1])]
    return Batch(12, C, targets, [11, 9, 6, 8], dtype=dtype, pad=pad, blank=blank)


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_loss_value_matches_torch(impl, reduction):
    mixed_batch().check(impl, reduction, grad=False)


@pytest.mark.points(2)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_loss_gradient_wrt_logits_matches_torch(impl, reduction):
    mixed_batch().check(impl, reduction)


@pytest.mark.points(2)
def test_float32_log_probs_give_a_float32_loss_and_gradient(impl):
    mixed_batch(dtype=f32).check(impl, "mean", what=", float32")


@pytest.mark.points(2)
def test_repeated_labels_need_a_blank_between_them(impl):
    # T = L + (number of adjacent repeats) is the tightest fit: [1,1] needs 3 frames.
    Batch(9, 4, [[1, 1], [1, 1, 2, 2, 1], [3, 3, 3], [2, 3, 2]], [3, 7, 9, 4]).check(impl, "none")


@pytest.mark.points(2)
def test_impossible_alignments_cost_inf(impl):
    # 6 labels in 5 frames; [2,2,2] needs 5 frames, has 4; [1,2] fits.
    Batch(6, 4, [[1, 2, 3, 1, 2, 3], [2, 2, 2], [1, 2]], [5, 4, 2]).check(impl, "none", grad=False)


@pytest.mark.points(1)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_zero_infinity_gives_zero_loss_and_zero_gradient_for_impossible_alignments(impl, reduction):
    Batch(6, 4, [[1, 2, 3, 1, 2, 3], [2, 2, 2], [1, 2, 2], [3]], [5, 4, 6, 2]).check(
        impl, reduction, zero_infinity=True)


@pytest.mark.points(1)
@pytest.mark.parametrize("pad", [0, 2, -1], ids=["pad=blank", "pad=a real class", "pad=-1"])
def test_padding_past_target_lengths_is_ignored(impl, pad):
    try:
        mixed_batch(pad=pad).check(impl, "sum", what=f", targets padded with {pad}")
    except SubmissionError as exc:
        if type(exc) is not SubmissionError or "not implemented yet" in str(exc):
            raise
        raise SubmissionError(f"{exc}; entries of targets past target_lengths[b] are padding and may hold any "
                              f"value ({pad} here): never index log_probs with them") from None


@pytest.mark.points(2)
def test_blank_can_be_the_last_class(impl):
    mixed_batch(blank=4).check(impl, "none", what=", blank=4")


@pytest.mark.points(1)
@pytest.mark.parametrize("targets", [[[2]], [[]]], ids=["one label", "empty target"])
def test_a_single_frame_batch_of_one(impl, targets):
    Batch(1, 3, targets, [1]).check(impl, "mean", what=", B=1, T=1")


@pytest.mark.points(3)
def test_loss_stays_finite_over_1000_frames_in_float64(impl):
    Batch(1000, 6, [[1, 2, 2, 3, 5, 4] * 3, [4, 1, 3, 3] * 3], [1000, 640]).check(impl, "sum", what=", T=1000")


@pytest.mark.points(2)
def test_loss_over_1000_frames_in_float32_is_good_to_1e_3(impl):
    Batch(1000, 6, [[1, 2, 2, 3, 5, 4] * 3, [4, 1, 3, 3] * 3], [1000, 640], dtype=f32).check(
        impl, "sum", what=", T=1000, float32")


# -- ctc_prefix_beam_search -----------------------------------------------------------

def logaddexp(a, b):
    if a == -INF or b == -INF:
        return max(a, b)
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def enumerate_paths(log_probs, blank=0):
    """Every labeling of nonzero probability, best first: [(labeling, sum over paths, best single path)]."""
    lp = log_probs.to(f64).tolist()
    T, C = len(lp), len(lp[0])
    total, best = {}, {}
    for path in itertools.product(range(C), repeat=T):
        score = sum(lp[t][c] for t, c in enumerate(path))
        key = tuple(collapse(path, blank))
        total[key] = logaddexp(total.get(key, -INF), score)
        best[key] = max(best.get(key, -INF), score)
    return sorted(((list(k), total[k], best[k]) for k in total), key=lambda r: -r[1])


def search_space(T, C):
    """How many prefixes a beam can hold without ever pruning: sum over lengths 0..T of (C-1)^L."""
    return sum((C - 1) ** n for n in range(T + 1))


VITERBI = ("only the best path was scored (max instead of log-add): a labeling's probability sums over ALL "
           "of its alignments, both the blank-ending and label-ending ones")
REPEAT_NO_BLANK = ("a repeated label was appended to paths that end in that same label: those paths merge into "
                   "the last label; a new copy may only follow a blank, so extend [.., c] by c from its "
                   "blank-ending probability only")
ZERO_PROB = ("labelings of probability zero must be left out (e.g. [c, c] in 2 frames: a repeat needs a blank "
             "between its copies)")


def as_beam(got, name):
    if not isinstance(got, (list, tuple)):
        raise AssertionError(f"{name}: expected a list of (labeling, log-probability) pairs, got {type(got).__name__}")
    out = []
    for i, entry in enumerate(got):
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise AssertionError(f"{name}: entry {i} should be a (labeling, log-probability) pair, got {entry!r}")
        labels, score = entry
        if isinstance(score, torch.Tensor) and score.numel() == 1:
            score = score.item()
        if not isinstance(score, (int, float)):
            raise AssertionError(f"{name}: entry {i} has log-probability {score!r}, expected a float")
        out.append((as_labels(labels, f"{name}, entry {i}"), float(score)))
    return out


def has_repeat(labels):
    return any(a == b for a, b in zip(labels, labels[1:]))


def check_beam(got, want, name, tol=None):
    """Compare a whole ranked list with the brute-force one: labelings, order, then log-probabilities."""
    got = as_beam(got, name)
    for labels, score in got:
        if score == -INF:
            raise AssertionError(f"{name}: returned {labels} with log-probability -inf; likely cause: {ZERO_PROB}")
    got_labels, want_labels = [g[0] for g in got], [w[0] for w in want]
    if got_labels != want_labels:
        viterbi = [w[0] for w in sorted(want, key=lambda r: -r[2])]
        k = next((i for i, (a, b) in enumerate(zip(got_labels, want_labels)) if a != b), min(len(got), len(want)))
        at = (f"first difference at rank {k}: expected {want_labels[k] if k < len(want) else 'nothing'}, "
              f"got {got_labels[k] if k < len(got) else 'nothing'}")
        extra = [g for g in got_labels if g not in want_labels]
        cause = (f"; likely cause: {VITERBI}" if got_labels == viterbi else
                 f"; likely cause: {REPEAT_NO_BLANK}" if extra and all(has_repeat(g) for g in extra) else "")
        raise AssertionError(f"{name}: expected {len(want)} labelings best first {want_labels}, got {len(got)}: "
                             f"{got_labels}; {at}{cause}")
    assert_close(torch.tensor([g[1] for g in got], dtype=f64), torch.tensor([w[1] for w in want], dtype=f64),
                 f"{name}: log-probabilities, best first", dims="K", **(tol or {}),
                 variants={VITERBI: torch.tensor([w[2] for w in want], dtype=f64)})


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("T,C", [(3, 3), (4, 3), (5, 4)])
def test_beam_search_with_a_full_width_beam_is_exact(impl, T, C):
    log_probs = (torch.randn(T, C, dtype=f64) * 1.5).log_softmax(-1)
    width = search_space(T, C)
    check_beam(impl.ctc_prefix_beam_search(log_probs, beam_width=width), enumerate_paths(log_probs),
               f"ctc_prefix_beam_search(T={T}, C={C}, beam_width={width})")


@pytest.mark.points(2)
def test_beam_search_sums_alignments_so_it_can_beat_the_best_path(impl):
    # Greedy picks blank, blank (0.30); the labeling [1] has 0.18 + 0.125 + 0.075 = 0.38 over three paths.
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.25, 0.15]], dtype=f64)
    for dtype in (f64, f32):
        log_probs = probs.log().to(dtype)
        check_beam(impl.ctc_prefix_beam_search(log_probs), enumerate_paths(log_probs),
                   f"ctc_prefix_beam_search(probs {probs.tolist()}, {str(dtype)[6:]}, default beam_width)",
                   tol=TOLERANCES[dtype])


@pytest.mark.points(2)
def test_beam_search_never_returns_zero_probability_labelings(impl):
    log_probs = torch.randn(2, 4, dtype=f64).log_softmax(-1)
    check_beam(impl.ctc_prefix_beam_search(log_probs, beam_width=50), enumerate_paths(log_probs),
               "ctc_prefix_beam_search(T=2, C=4, beam_width=50)")


@pytest.mark.points(2)
@pytest.mark.parametrize("blank", [0, 3])
def test_a_narrow_beam_still_finds_the_best_labeling_of_a_peaked_input(impl, blank):
    T, C, width = 7, 4, 3
    path = [1, 1, blank, 2, blank, 1, 2] if blank == 0 else [1, 1, blank, 2, blank, 1, 0]
    logits = torch.randn(T, C, dtype=f64) * 0.5
    logits[torch.arange(T), long(path)] += 3.0
    log_probs = logits.log_softmax(-1)
    name = f"ctc_prefix_beam_search(T={T}, C={C}, beam_width={width}, blank={blank}) on a peaked input"
    got = as_beam(impl.ctc_prefix_beam_search(log_probs, beam_width=width, blank=blank), name)
    if not 1 <= len(got) <= width:
        raise AssertionError(f"{name}: expected between 1 and {width} labelings, got {len(got)}")
    scores = [s for _, s in got]
    if scores != sorted(scores, reverse=True):
        raise AssertionError(f"{name}: results must come best first; log-probabilities came as {scores}")
    want = enumerate_paths(log_probs, blank)[0][0]
    check_labels(got[0][0], want, f"{name}: top labeling",
                 variants={BLANK_IGNORED: enumerate_paths(log_probs, 0)[0][0] if blank else None})
