"""Grader for `teacher_forcing`: shift_right, decode (teacher forcing, free running, scheduled sampling),
greedy decoding that stops at EOS, and the sequence loss that ignores pads.

The submission drives a `grader.child.ScriptedDecoder` that lives in its own
process and records every tokens tensor it is fed (`res.args[0].fed`). The
expected logits and fed tokens come from independent loops here, in the
grader, that follow the contract's rule with the same decoder class and a
generator seeded the same way; the loss comes from F.cross_entropy with
ignore_index. The wrong variants are the same loops with one catalogued
mistake, used only to name the likely cause of a mismatch.

Shapes: B batch, T target length, V vocabulary, H hidden, L decoded length.
"""

from contextlib import contextmanager

import pytest
import torch
import torch.nn.functional as F

from grader.child import ScriptedDecoder, Seeded
from grader.compare import assert_close
from grader.sandbox import SubmissionError

f64, f32, long = torch.float64, torch.float32, torch.long
TOKENS = "token ids are int64 (what argmax returns and what embeddings index with); keep them int64"


def rand(*shape, dtype=f64, scale=1.0):
    return torch.randn(*shape, dtype=dtype) * scale


def weights(V, H, dtype=f64, grad=False):
    """emb (V, H), w_h (H, H), w_out (V, H) for a ScriptedDecoder: h' = tanh(emb[tok] + h @ w_h), logits = h' @ w_out.T."""
    ws = (rand(V, H, dtype=dtype), rand(H, H, dtype=dtype, scale=H ** -0.5), rand(V, H, dtype=dtype))
    return tuple(w.requires_grad_(grad) for w in ws)


def new_seed() -> int:
    return int(torch.randint(0, 2 ** 31 - 1, ()))


def fed_tokens(decoder, name="tokens fed to step_fn"):
    """The (B, steps) tokens the submission fed the decoder, one column per call of step_fn."""
    if not decoder.fed:
        raise AssertionError(f"{name}: step_fn was never called")
    return torch.stack(list(decoder.fed), dim=1)  # steps x (B,) -> (B, steps)


@contextmanager
def cause_otherwise(cause):
    """Name ``cause`` when a comparison fails and no catalogued variant explained it."""
    try:
        yield
    except AssertionError as exc:
        if cause is None or "likely cause" in str(exc):
            raise
        raise AssertionError(f"{exc}; likely cause: {cause}") from None


# -- independent loops (expected values and wrong variants) --------------------------

def run_decode(ws, h0, targets, bos, ratio, seed, *, shift=0, first_target=False, coin="example",
               greater=False, early_draw=False, detach_state=False):
    """decode by the contract's rule, one step at a time; the keyword arguments inject one mistake.

    Returns (logits (B, T, V), fed tokens (B, T)).
    """
    dec = ScriptedDecoder(*ws)
    g = None if seed is None else torch.Generator().manual_seed(seed)
    B, T = targets.shape
    tokens = targets[:, 0].clone() if first_target else torch.full((B,), bos, dtype=long)
    if early_draw:
        torch.rand(B, generator=g)
    once = torch.rand(B, generator=g) if coin == "sequence" else None
    h, steps = h0, []
    for t in range(T):
        logits, h = dec(tokens, h)
        if detach_state:
            h = h.detach()
        steps.append(logits)
        if t < T - 1:
            u = once if coin == "sequence" else torch.rand(B if coin == "example" else 1, generator=g).expand(B)
            take = u > ratio if greater else u < ratio
            src = t + shift
            target = targets[:, src] if src >= 0 else torch.full((B,), bos, dtype=long)
            tokens = torch.where(take, target, logits.detach().argmax(-1))
    return torch.stack(steps, dim=1), fed_tokens(dec)


V_OFF_BY_ONE = ("fed targets[b, t+1] after step t (off by one): step t predicts targets[b, t], "
                "so that is the token to feed next")
V_LAG = "fed targets[b, t-1] after step t (the inputs lag one step): after step t feed targets[b, t]"
V_FIRST = "the first input was targets[:, 0], not BOS: every sequence starts from bos_id"
V_GREATER = ("the coin is inverted (u > ratio feeds the target): feed targets[b, t] when "
             "u[b] < teacher_forcing_ratio, the argmax otherwise")
V_ONE_COIN = ("one number per step for the whole batch (torch.rand(1)): draw u = torch.rand(B, generator=generator), "
              "one coin per example")
V_PER_SEQUENCE = ("one coin per example for the whole sequence, drawn once before the loop: draw fresh coins "
                  "u = torch.rand(B, generator=generator) after every step t < T-1")
V_EARLY = ("a number was also drawn before the first step, so every coin is one draw late: "
           "draw only after steps t < T-1")
V_DETACH = ("the state was detached between steps: only the token choice is cut from the graph; "
            "gradients must flow through the state from step to step")
V_TIME_MAJOR = "the logits were stacked time-major (T, B, V): stack the steps along dim=1 to get (B, T, V)"
V_SAMPLED = ("after step {t}, example {b} was fed {tok}, neither targets[b, t] = {tgt} nor the argmax {arg} of its "
             "own step-{t} logits: feed logits.argmax(-1), never a sample (torch.multinomial, Categorical.sample)")
V_COINS = ("every token fed is a target or the example's own argmax, but not where this generator's coins say: after "
           "each step t < T-1 (none before the first step) draw u = torch.rand(B, generator=generator) on the CPU, "
           "and feed targets[b, t] exactly when u[b] < teacher_forcing_ratio")

MISTAKES = {
    V_OFF_BY_ONE: dict(shift=1),
    V_LAG: dict(shift=-1),
    V_FIRST: dict(first_target=True),
    V_GREATER: dict(greater=True),
    V_ONE_COIN: dict(coin="step"),
    V_PER_SEQUENCE: dict(coin="sequence"),
    V_EARLY: dict(early_draw=True),
}


def decode_variants(ws, h0, targets, bos, ratio, seed, pick):
    """The outputs (pick 0: logits, 1: fed tokens) of each catalogued mistake."""
    return {cause: (lambda kw=kw: run_decode(ws, h0, targets, bos, ratio, seed, **kw)[pick])
            for cause, kw in MISTAKES.items()}


def make_case(B, T, V, H, dtype=f64):
    ws = weights(V, H, dtype)
    h0 = rand(B, H, dtype=dtype)
    targets = torch.randint(0, V, (B, T))
    bos = int(torch.randint(0, V, ()))
    return ws, h0, targets, bos


def replay_cause(ws, h0, fed, targets, coins_matter):
    """Why fed tokens went wrong when no catalogued variant matches: replay the decoder on what it was fed."""
    if fed.shape != targets.shape:
        return None
    dec, h = ScriptedDecoder(*ws), h0
    for t in range(targets.shape[1] - 1):
        logits, h = dec(fed[:, t], h)
        nxt, arg = fed[:, t + 1], logits.argmax(-1)
        bad = ((nxt != targets[:, t]) & (nxt != arg)).nonzero()
        if len(bad):
            b = int(bad[0])
            return V_SAMPLED.format(t=t, b=b, tok=int(nxt[b]), tgt=int(targets[b, t]), arg=int(arg[b]))
    return V_COINS if coins_matter else None


def check_fed(res, ws, h0, targets, bos, ratio, seed, what):
    """The tokens the submission fed its decoder, step by step, against the contract's loop."""
    _, want_fed = run_decode(ws, h0, targets, bos, ratio, seed)
    got = fed_tokens(res.args[0], f"tokens fed to step_fn{what}")
    with cause_otherwise(replay_cause(ws, h0, got, targets, 0 < ratio < 1)):
        assert_close(got, want_fed, f"tokens fed to step_fn{what}", dims="BT", dtype_hint=TOKENS,
                     variants=decode_variants(ws, h0, targets, bos, ratio, seed, 1))


def check_generator_consumed(res, targets, ratio, seed, what):
    """T-1 draws of torch.rand(B) whatever the ratio; at ratio 0 or 1 only the generator's state can show it.

    The generator comes back from the child with its state (``Seeded.state``).
    """
    state = getattr(res.kwargs.get("generator"), "state", None)
    if state is None or seed is None:
        return
    B, T = targets.shape
    g = torch.Generator().manual_seed(seed)
    for _ in range(T - 1):
        torch.rand(B, generator=g)
    if not torch.equal(state, g.get_state()):
        raise AssertionError(f"the generator after decode{what} is not where T-1 = {T - 1} draws of torch.rand(B) "
                             f"leave it; likely cause: the generator was not drawn at ratio {ratio}: draw "
                             "u = torch.rand(B, generator=generator) after every step t < T-1 whatever the ratio, "
                             "so a seeded run consumes its generator the same way on every schedule")


def check_decode(impl, ws, h0, targets, bos, ratio, seed, what):
    kw = {"teacher_forcing_ratio": ratio}
    if seed is not None:
        kw["generator"] = Seeded(seed)
    res = impl.call("decode", ScriptedDecoder(*ws), h0, targets, bos, **kw)
    check_fed(res, ws, h0, targets, bos, ratio, seed, what)
    check_generator_consumed(res, targets, ratio, seed, what)
    want_logits, _ = run_decode(ws, h0, targets, bos, ratio, seed)
    assert_close(res.value, want_logits, f"logits{what}", dims="BTV",
                 variants={V_TIME_MAJOR: lambda: want_logits.transpose(0, 1),
                           **decode_variants(ws, h0, targets, bos, ratio, seed, 0)})
    return res


# -- shift_right ---------------------------------------------------------------------

SHIFT_CASES = {"B=3,T=5": (3, 5), "B=1,T=4": (1, 4), "B=2,T=1": (2, 1)}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", SHIFT_CASES)
def test_shift_right_puts_bos_first_and_drops_the_last_target(impl, case):
    B, T = SHIFT_CASES[case]
    targets = torch.randint(1, 9, (B, T))
    bos = 0
    col = torch.full((B, 1), bos, dtype=long)
    want = torch.tensor([[bos] + row[:-1] for row in targets.tolist()], dtype=long).reshape(B, T)
    assert_close(impl.shift_right(targets, bos), want, f"shift_right(targets, bos_id={bos}) ({case})", dims="BT",
                 dtype_hint=TOKENS, variants={
                     "the first target was dropped instead of the last: the inputs are [bos, y_0, .., y_{T-2}]":
                         lambda: torch.cat([col, targets[:, 1:]], 1),
                     "shifted left (BOS at the end): the inputs are [bos, y_0, .., y_{T-2}]":
                         lambda: torch.cat([targets[:, 1:], col], 1),
                     "all T targets were kept after BOS: drop the last one so the output has T columns":
                         lambda: torch.cat([col, targets], 1),
                 })


# -- decode --------------------------------------------------------------------------

DECODE_SHAPES = {
    "B=3,T=5,V=7,H=4": (3, 5, 7, 4),
    "B=1,T=4,V=5,H=3": (1, 4, 5, 3),
    "B=2,T=1,V=6,H=4": (2, 1, 6, 4),
    "B=4,T=3,V=2,H=5": (4, 3, 2, 5),
}


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("case", DECODE_SHAPES)
def test_teacher_forcing_feeds_bos_then_the_previous_target(impl, case):
    ws, h0, targets, bos = make_case(*DECODE_SHAPES[case])
    B, T = targets.shape
    res = check_decode(impl, ws, h0, targets, bos, 1.0, new_seed(), f" at ratio 1.0 ({case})")
    # Teacher forcing feeds exactly shift_right(targets): said once more, from the definition.
    want = torch.cat([torch.full((B, 1), bos, dtype=long), targets[:, :-1]], 1)
    assert_close(fed_tokens(res.args[0]), want, "tokens fed at ratio 1.0 (must be [bos, y_0, .., y_{T-2}])", dims="BT")


@pytest.mark.points(2)
@pytest.mark.parametrize("case", ["B=3,T=5,V=7,H=4", "B=1,T=4,V=5,H=3", "B=4,T=3,V=2,H=5"])
def test_free_running_feeds_back_the_argmax_of_its_own_logits(impl, case):
    ws, h0, targets, bos = make_case(*DECODE_SHAPES[case])
    check_decode(impl, ws, h0, targets, bos, 0.0, new_seed(), f" at ratio 0.0 ({case})")


SAMPLING = {
    "ratio=0.5,B=4,T=6,V=5,H=3": (0.5, 4, 6, 5, 3),
    "ratio=0.3,B=3,T=7,V=6,H=4": (0.3, 3, 7, 6, 4),
    "ratio=0.5,B=1,T=6,V=2,H=3": (0.5, 1, 6, 2, 3),
    "ratio=0.7,B=5,T=1,V=4,H=2": (0.7, 5, 1, 4, 2),
}


@pytest.mark.points(2)
@pytest.mark.parametrize("case", SAMPLING)
def test_scheduled_sampling_flips_one_seeded_coin_per_example_after_every_step(impl, case):
    ratio, *shape = SAMPLING[case]
    ws, h0, targets, bos = make_case(*shape)
    check_decode(impl, ws, h0, targets, bos, ratio, new_seed(), f" with a seeded generator ({case})")


@pytest.mark.points(1)
def test_decode_without_a_generator_feeds_a_target_or_its_own_argmax(impl):
    B, T, V, H = 6, 5, 4, 3
    ws, h0, targets, bos = make_case(B, T, V, H)
    res = impl.call("decode", ScriptedDecoder(*ws), h0, targets, bos, teacher_forcing_ratio=0.5)
    fed = fed_tokens(res.args[0], "tokens fed to step_fn at ratio 0.5 without a generator")
    if fed.shape != (B, T):
        raise AssertionError(f"tokens fed to step_fn at ratio 0.5 without a generator: expected shape {(B, T)}, "
                             f"got {tuple(fed.shape)}: step_fn is called once per target step")
    assert_close(fed[:, 0], torch.full((B,), bos, dtype=long), "the first tokens fed without a generator", dims="B",
                 variants={V_FIRST: targets[:, 0]})
    # Whatever the global RNG drew, each later input is the target or the example's own argmax.
    cause = replay_cause(ws, h0, fed, targets, coins_matter=False)
    if cause:
        raise AssertionError(f"tokens fed at ratio 0.5 without a generator: {cause}")


@pytest.mark.points(3)
def test_decode_gradients_match_autograd_through_the_same_loop(impl):
    B, T, V, H = 3, 5, 6, 4
    ws, h0 = weights(V, H, grad=True), rand(B, H).requires_grad_(True)
    targets, bos, seed = torch.randint(0, V, (B, T)), 0, new_seed()
    g = rand(B, T, V)
    res = impl.call("decode", ScriptedDecoder(*ws), h0, targets, bos, teacher_forcing_ratio=0.5,
                    generator=Seeded(seed), grad_outputs=g)

    def grads(**mistake):
        leaves = [t.detach().clone().requires_grad_(True) for t in (*ws, h0)]
        logits, _ = run_decode(leaves[:3], leaves[3], targets, bos, 0.5, seed, **mistake)
        return torch.autograd.grad(logits, leaves, g)

    # The path first: gradients can only agree once the same tokens were fed.
    check_fed(res, ws, h0, targets, bos, 0.5, seed, " (ratio 0.5, seeded, gradient test)")
    want = grads()
    dec = res.args[0]
    named = zip(("emb", "w_h", "w_out", "h0"), ("VH", None, "VH", "BH"), (dec.emb, dec.w_h, dec.w_out, res.args[1]))
    for i, (name, dims, got) in enumerate(named):
        if got.grad is None:
            raise AssertionError(f"d logits / d {name}: no gradient reached it; the logits must stay connected to "
                                 "the decoder's weights and state (no .detach(), .item() or torch.tensor(...) on them)")
        assert_close(got.grad, want[i], f"d logits / d {name} (ratio 0.5, seeded)", dims=dims,
                     variants={V_DETACH: lambda i=i: grads(detach_state=True)[i]})


@pytest.mark.points(1)
def test_decode_keeps_float32(impl):
    ws, h0, targets, bos = make_case(3, 4, 5, 3, dtype=f32)
    check_decode(impl, ws, h0, targets, bos, 0.5, new_seed(), " in float32")


# -- greedy_decode -------------------------------------------------------------------

def run_greedy(ws, h0, bos, eos, max_len, *, pad=True, stop="all", early=False):
    """greedy_decode by the contract, one step at a time; the keyword arguments inject one mistake."""
    dec = ScriptedDecoder(*ws)
    B = (h0[0] if isinstance(h0, tuple) else h0).shape[0]
    tokens, h = torch.full((B,), bos, dtype=long), h0
    finished, out = torch.zeros(B, dtype=torch.bool), []
    for _ in range(max_len):
        logits, h = dec(tokens, h)
        nxt = logits.argmax(-1)
        if pad:
            nxt = torch.where(finished, eos, nxt)
        finished = finished | (nxt == eos)
        done = {"all": finished.all(), "any": finished.any(), "first": finished[0], "never": False}[stop]
        if bool(done) and early:
            break
        out.append(nxt)
        if bool(done):
            break
        tokens = nxt
    return torch.stack(out, 1) if out else torch.empty(B, 0, dtype=long)


G_NO_PAD = ("a finished sequence kept decoding: once a sequence has emitted EOS, all its later positions must "
            "hold eos_id (pad finished sequences with EOS)")
G_ANY = "stopped as soon as the FIRST sequence emitted EOS: stop only when every sequence has emitted EOS"
G_ROW0 = "stopped when sequence 0 emitted EOS: stop only when every sequence in the batch has emitted EOS"
G_EARLY = "stopped one step early: the step at which the last sequence emits EOS belongs to the output"
G_NEVER = ("did not stop once every sequence had emitted EOS: stop right after the step where the last one does, "
           "so L < max_len")


def greedy_variants(ws, h0, bos, eos, max_len):
    kinds = {G_NO_PAD: dict(pad=False), G_ANY: dict(stop="any"), G_ROW0: dict(stop="first"),
             G_EARLY: dict(early=True), G_NEVER: dict(stop="never")}
    return {cause: (lambda kw=kw: run_greedy(ws, h0, bos, eos, max_len, **kw)) for cause, kw in kinds.items()}


def check_greedy(impl, ws, h0, bos, eos, max_len, what):
    res = impl.call("greedy_decode", ScriptedDecoder(*ws), h0, bos, eos, max_len)
    B = (h0[0] if isinstance(h0, tuple) else h0).shape[0]
    first = fed_tokens(res.args[0], f"tokens fed to step_fn{what}")[:, 0]
    assert_close(first, torch.full((B,), bos, dtype=long), f"the first tokens fed to step_fn{what}", dims="B",
                 dtype_hint=TOKENS, variants={"the first input was eos_id, not bos_id: decoding starts from BOS":
                                              torch.full((B,), eos, dtype=long)})
    assert_close(res.value, run_greedy(ws, h0, bos, eos, max_len), f"greedy_decode output{what}", dims="BL",
                 dtype_hint=TOKENS, variants=greedy_variants(ws, h0, bos, eos, max_len))


@pytest.mark.public
@pytest.mark.points(2)
@pytest.mark.parametrize("dtype", [f64, f32], ids=["float64", "float32"])
def test_greedy_decode_feeds_back_its_own_argmax(impl, dtype):
    B, V, H, max_len = 5, 6, 4, 7
    ws, h0 = weights(V, H, dtype), rand(B, H, dtype=dtype)
    check_greedy(impl, ws, h0, 0, 1, max_len, f" (random decoder, B={B}, V={V}, max_len={max_len}, {str(dtype).removeprefix('torch.')})")


@pytest.mark.points(1)
def test_greedy_decode_takes_a_tuple_state_like_an_lstms(impl):
    B, V, H, max_len = 3, 6, 4, 6
    ws, state = weights(V, H), (rand(B, H), rand(B, H))
    try:
        check_greedy(impl, ws, state, 0, 1, max_len, f" (state = (h, c), a tuple; B={B}, V={V}, max_len={max_len}; "
                     "B and the device come from its first tensor)")
    except SubmissionError as exc:
        raise type(exc)(f"{exc}; with a tuple state such as an LSTM's (h, c), take B and the device from its "
                        "first tensor, and pass the state to step_fn as it is") from None


# A scripted decoder whose argmax follows a chain of tokens, so EOS comes at known steps.
# bos = 5, eos = 2; chain 7 -> 3 -> 6 -> 1 -> 4 -> 2 (EOS) -> 6 -> ...; 0 -> 0 never ends.
BOS, EOS, V_CHAIN = 5, 2, 8
NEXT = {7: 3, 3: 6, 6: 1, 1: 4, 4: EOS, EOS: 6, 0: 0, BOS: 7}


def chain_decoder(starts, dtype=f64):
    """h stays close to the one-hot of the last token fed; the logits put 10 on NEXT[that token].

    The first step sees BOS, whose embedding is zero, so it reads the one-hot of start[b] from h0 instead:
    sequence b emits NEXT[start], NEXT[NEXT[start]], ...; a start of 4 emits EOS at step 0, 1 at step 1, ...
    """
    V = V_CHAIN
    emb = 5.0 * torch.eye(V, dtype=dtype)
    emb[BOS] = 0.0
    w_h = 0.3 * torch.eye(V, dtype=dtype)
    w_out = torch.zeros(V, V, dtype=dtype)
    for tok, nxt in NEXT.items():
        w_out[nxt, tok] = 10.0
    h0 = 10.0 * torch.eye(V, dtype=dtype)[list(starts)]  # (B, H=V)
    return (emb, w_h, w_out), h0


GREEDY_CASES = {
    "B=3, EOS at steps 2, 0, 4": ([6, 4, 7], 8),
    "B=1, EOS at step 3": ([3], 6),
    "every sequence emits EOS at step 0": ([4, 4], 5),
    "sequence 1 never emits EOS: stops at max_len=6": ([1, 0, 6], 6),
    "max_len=2 cuts every sequence before its EOS": ([7, 3], 2),
    "the last EOS comes exactly at max_len=5": ([4, 7], 5),
}


@pytest.mark.points(1)
@pytest.mark.parametrize("case", GREEDY_CASES)
def test_greedy_decode_pads_with_eos_and_stops_once_every_sequence_is_done(impl, case):
    starts, max_len = GREEDY_CASES[case]
    ws, h0 = chain_decoder(starts)
    check_greedy(impl, ws, h0, BOS, EOS, max_len, f" (bos={BOS}, eos={EOS}; {case})")


# -- sequence_loss -------------------------------------------------------------------

def make_targets(B, T, V, pad, lengths):
    """Real tokens never equal pad; positions at or after lengths[b] hold pad."""
    real = torch.randint(0, V - 1, (B, T))
    real = real + (real >= pad).long()  # skip the pad id
    steps = torch.arange(T)[None, :]
    return torch.where(steps < torch.tensor(lengths)[:, None], real, pad)


def expected_loss(logits, targets, pad):
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=pad)


def loss_variants(logits, targets, pad):
    B, T, V = logits.shape
    nll = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none").reshape(B, T)
    real = targets != pad
    per_seq = (nll * real).sum(1) / real.sum(1).clamp_min(1)
    return {
        "averaged over every position, pads included: average over the non-pad targets only":
            lambda: nll.mean(),
        "divided by B*T instead of by the number of non-pad targets": lambda: (nll * real).sum() / (B * T),
        "summed instead of averaged: divide by the number of non-pad targets": lambda: (nll * real).sum(),
        "averaged per sequence, then over the batch: average over all non-pad tokens together":
            lambda: per_seq.mean(),
        "the sign is flipped: cross entropy is -log softmax(logits)[target]": lambda: -(nll * real).sum() / real.sum(),
    }


LOSS_CASES = {
    "B=3,T=5,V=7,pad=0, lengths 5,3,1": (3, 5, 7, 0, [5, 3, 1]),
    "B=2,T=4,V=5,pad=4 (the last id), lengths 2,4": (2, 4, 5, 4, [2, 4]),
    "B=1,T=1,V=2,pad=1, no pads": (1, 1, 2, 1, [1]),
    "B=4,T=3,V=3,pad=0, no pads": (4, 3, 3, 0, [3, 3, 3, 3]),
}


@pytest.mark.public
@pytest.mark.points(1)
@pytest.mark.parametrize("case", LOSS_CASES)
def test_sequence_loss_matches_cross_entropy_with_ignore_index(impl, case):
    B, T, V, pad, lengths = LOSS_CASES[case]
    logits, targets = rand(B, T, V, scale=2.0), make_targets(B, T, V, pad, lengths)
    assert_close(impl.sequence_loss(logits, targets, pad), expected_loss(logits, targets, pad),
                 f"sequence_loss ({case})", variants=loss_variants(logits, targets, pad))


@pytest.mark.points(2)
def test_sequence_loss_gradient_matches_autograd_through_cross_entropy(impl):
    B, T, V, pad = 3, 6, 5, 0
    logits, targets = rand(B, T, V, scale=2.0).requires_grad_(True), make_targets(B, T, V, pad, [6, 2, 4])
    res = impl.call("sequence_loss", logits, targets, pad, grad_outputs=torch.tensor(1.0, dtype=f64))
    expected_loss(logits, targets, pad).backward()
    got = res.args[0].grad
    if got is None:
        raise AssertionError("d loss / d logits: no gradient reached the logits; build the loss from them with "
                             "tensor operations (no .item(), .tolist() or torch.tensor(...))")
    real = (targets != pad)[..., None]
    assert_close(got, logits.grad, "d loss / d logits", dims="BTV", variants={
        "averaged over every position, pads included: the pads got a gradient":
            lambda: torch.autograd.grad(F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)), logits)[0],
        "divided by B*T instead of by the number of non-pad targets":
            lambda: logits.grad * real.sum() / (B * T),
    })


@pytest.mark.points(1)
def test_sequence_loss_keeps_float32(impl):
    B, T, V, pad = 2, 5, 6, 3
    logits, targets = rand(B, T, V, dtype=f32, scale=2.0), make_targets(B, T, V, pad, [5, 2])
    assert_close(impl.sequence_loss(logits, targets, pad), expected_loss(logits, targets, pad),
                 "sequence_loss in float32", variants=loss_variants(logits, targets, pad))
