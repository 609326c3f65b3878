"""Realistic one-mistake versions of reference/bptt.py."""

from tests.helpers import Mutant

_CUT = """        if truncate and t > 0 and t % truncate == 0:
            # The forward loop detached h_prev before step t: the gradient stops here.
            dh_next = torch.zeros_like(dh_next)
"""

MUTANTS = [
    # -- rnn_forward
    Mutant("hs_from_h0", (("        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b)\n        steps.append(h)",
                           "        steps.append(h)\n        h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b)"),),
           expect="hs holds h_0 .. h_{T-1}"),
    Mutant("forward_w_hh_transposed", (("h = torch.tanh(x[:, t] @ w_xh + h @ w_hh + b)",
                                        "h = torch.tanh(x[:, t] @ w_xh + h @ w_hh.T + b)"),),
           expect="w_hh was transposed"),
    # -- rnn_backward
    Mutant("no_recurrent_term", (("dh = dhs[:, t] + dh_next", "dh = dhs[:, t]"),),
           expect="the gradient does not flow back through time"),
    Mutant("tanh_prime_of_h_prev", (("da = dh * (1 - hs[:, t] ** 2)", "da = dh * (1 - h_prev ** 2)"),),
           expect="tanh' was taken at the step's input h_{t-1}"),
    Mutant("back_through_w_hh_not_transposed", (("dh_next = da @ w_hh.T", "dh_next = da @ w_hh"),),
           expect="so it is da @ w_hh.T"),
    Mutant("missing_dh0", (('"dh0": dh_next', '"dh0": torch.zeros_like(h0)'),),
           expect="dh0 is zero"),
    Mutant("dw_xh_transposed", (("dw_xh = torch.zeros_like(w_xh)  # (D, H)", "dw_xh = torch.zeros_like(w_xh.T)"),
                                ("dw_xh = dw_xh + x[:, t].T @ da", "dw_xh = dw_xh + da.T @ x[:, t]")),
           expect="dw_xh is transposed"),
    Mutant("db_not_summed_over_batch", (("db = db + da.sum(dim=0)", "db = db + da"),),
           expect="db was not summed over the batch"),
    Mutant("db_averaged_over_batch", (("db = db + da.sum(dim=0)", "db = db + da.mean(dim=0)"),),
           expect="db was averaged over the batch"),
    Mutant("dw_hh_not_summed_over_time", (("dw_hh = dw_hh + h_prev.T @ da", "dw_hh = h_prev.T @ da"),),
           expect="only one step's contribution was kept"),
    Mutant("dw_hh_with_h_t", (("dw_hh = dw_hh + h_prev.T @ da", "dw_hh = dw_hh + hs[:, t].T @ da"),),
           expect="dw_hh used h_t"),
    Mutant("dhs_of_the_last_step_only", (("dh = dhs[:, t] + dh_next", "dh = (dhs[:, t] if t == T - 1 else 0) + dh_next"),),
           expect="only dhs[:, T-1] (the last step) was used"),
    Mutant("truncation_ignored", (("if truncate and t > 0 and t % truncate == 0:", "if False:"),),
           expect="was ignored: no gradient may cross"),
    Mutant("truncation_at_t_mod_k_1", (("t % truncate == 0", "t % truncate == 1"),),
           expect="truncation boundary off by one: the gradient was cut before steps with t % 2 == 1"),
    # The cut moved to the top of the step: it now stops what step t+1 sends into hs[:, t].
    Mutant("truncation_after_the_boundary_step", ((_CUT, ""),
                                                   ("        dh = dhs[:, t] + dh_next  # (B, H)\n",
                                                    _CUT + "        dh = dhs[:, t] + dh_next  # (B, H)\n")),
           expect="cut after the boundary step"),
    # -- grad_norms_through_time
    Mutant("norms_reversed", (("return torch.stack(norms[::-1])", "return torch.stack(norms)"),),
           expect="the norms are in reverse order"),
    Mutant("norms_tanh_prime_at_h_t", (("g = (g * (1 - hs[:, t] * hs[:, t])) @ w_hh.T",
                                        "g = (g * (1 - hs[:, t - 1] * hs[:, t - 1])) @ w_hh.T"),),
           expect="tanh' at the wrong state"),
    Mutant("norms_squared", (("norms.append(g.pow(2).sum().sqrt())", "norms.append(g.pow(2).sum())"),
                             ("norms = [g.pow(2).sum().sqrt()]", "norms = [g.pow(2).sum()]")),
           expect="squared norms"),
    # -- rules of the exercise
    Mutant("uses_autograd", (('    x, h0, w_xh, w_hh, hs = cache["x"], cache["h0"], cache["w_xh"], cache["w_hh"], cache["hs"]\n',
                              '    x, h0, w_xh, w_hh, hs = cache["x"], cache["h0"], cache["w_xh"], cache["w_hh"], cache["hs"]\n'
                              '    leaves = [t.detach().requires_grad_(True) for t in (x, h0, w_xh, w_hh)]\n'
                              '    h, out = leaves[1], []\n'
                              '    for t in range(x.shape[1]):\n'
                              '        h = torch.tanh(leaves[0][:, t] @ leaves[2] + h @ leaves[3])\n'
                              '        out.append(h)\n'
                              '    auto = torch.autograd.grad((torch.stack(out, 1) * dhs).sum(), leaves)\n'),),
           expect="off limits"),
    Mutant("modifies_dhs_in_place", (("dh = dhs[:, t] + dh_next", "dh = dhs[:, t].add_(dh_next)"),),
           expect="modified its argument 1 in place"),
]
