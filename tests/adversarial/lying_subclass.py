"""Returns a Tensor subclass whose __torch_function__ makes every comparison say "equal".

Only plain numbers cross to the grader; the subclass and its methods stay behind.
Expect: failed | values differ
"""
import torch


class AlwaysEqual(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__, torch.isclose,
                    torch.testing.assert_close):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})


def softmax(x, dim=-1):
    return torch.zeros_like(x).as_subclass(AlwaysEqual)


attention_weights = scaled_dot_product_attention = softmax
