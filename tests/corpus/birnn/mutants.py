"""Realistic one-mistake versions of reference/birnn.py."""

from tests.helpers import Mutant

RUN_BWD = "out_rev, (h_b, c_b) = _run_direction(x_rev, mask, bwd, h0, h0)"

MUTANTS = [
    Mutant("reverse_flips_all_T", (("return x[rows, src]  # (B, T, *)", "return x.flip(1)"),),
           expect="reversed over all T steps (x.flip(1))", why="pads reversed into the sequence"),
    Mutant("reverse_pads_too", (("src = torch.where(t < n, n - 1 - t, t)", "src = n - 1 - t"),),
           expect="the padded steps were reversed too"),
    Mutant("reverse_pads_clamped", (("src = torch.where(t < n, n - 1 - t, t)", "src = (n - 1 - t).clamp(min=0)"),),
           expect="the padded steps hold copies of step 0"),
    Mutant("bwd_input_flipped_over_T", (("x_rev = reverse_padded(x, lengths)", "x_rev = x.flip(1)"),
                                        ("out_b = reverse_padded(out_rev, lengths)", "out_b = out_rev.flip(1)")),
           expect="the backward direction read x.flip(1), which puts the pads first"),
    Mutant("state_runs_over_pads", (("h = torch.where(real, h_new, h)", "h = h_new"),
                                    ("c = torch.where(real, c_new, c)", "c = c_new")),
           expect="h_n[0] (the forward direction's state at step length-1)", why="forward final state from step T-1"),
    Mutant("pads_not_zeroed", (("outs.append(torch.where(real, h_new, 0.0))", "outs.append(h_new)"),),
           expect="outputs at padded steps must be exactly 0"),
    Mutant("bwd_not_rereversed", (("out_b = reverse_padded(out_rev, lengths)", "out_b = out_rev"),),
           expect="the backward outputs are still in reversed time order"),
    Mutant("concat_backward_first", (("torch.cat([out_f, out_b], dim=-1)", "torch.cat([out_b, out_f], dim=-1)"),),
           expect="the halves are swapped"),
    Mutant("states_backward_first", (("h_n = torch.stack([h_f, h_b])", "h_n = torch.stack([h_b, h_f])"),
                                     ("c_n = torch.stack([c_f, c_b])", "c_n = torch.stack([c_b, c_f])")),
           expect="h_n[0] must hold the forward direction's final state"),
    Mutant("forward_weights_both_ways", ((RUN_BWD, RUN_BWD.replace("bwd, h0", "fwd, h0")),),
           expect="the backward direction ran with the forward weights"),
    Mutant("bwd_starts_from_fwd_state", ((RUN_BWD, RUN_BWD.replace("h0, h0", "h_f, c_f")),),
           expect="started from the forward direction's final state"),
    Mutant("initial_state_ones", (("h0 = x.new_zeros(B, H)", "h0 = x.new_ones(B, H)"),),
           expect="the initial state is not zero"),
    Mutant("bwd_not_reversed_at_all", (("x_rev = reverse_padded(x, lengths)", "x_rev = x"),
                                       ("out_b = reverse_padded(out_rev, lengths)", "out_b = out_rev")),
           expect="the backward direction read the sequence left to right"),
    Mutant("c_n_holds_h", (("c_n = torch.stack([c_f, c_b])", "c_n = torch.stack([h_f, h_b])"),),
           expect="c_n holds the hidden states h"),
    Mutant("fixed_float32_state", (("h0 = x.new_zeros(B, H)", "h0 = torch.zeros(B, H)"),),
           expect="dtype"),
    Mutant("reverse_in_place", (("return x[rows, src]  # (B, T, *)", "x[:] = x[rows, src].clone()\n    return x"),),
           expect="in place"),
]
