"""The static forbidden-call check reads imports and aliases the way Python does."""

from grader.forbidden import tainted

NAMES = ["torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.nn.utils.rnn"]


def test_direct_and_aliased_uses_are_found():
    src = ("import torch\nimport torch.nn.functional as F\nfrom torch import softmax as sm\n"
           "def a(x): return torch.softmax(x, -1)\n"
           "def b(x): return F.softmax(x, -1)\n"
           "def c(x): return sm(x, -1)\n"
           "def d(x): return x.softmax(-1)\n"
           "def e(x): return getattr(x, 'softmax')(-1)\n"
           "def ok(x): return torch.exp(x)\n")
    found = tainted(src, NAMES)
    assert set(found) == {"a", "b", "c", "d", "e"}
    assert found["b"] == ["torch.nn.functional.softmax"]


def test_a_learners_own_function_of_the_same_name_is_fine():
    src = "import torch\ndef softmax(x, dim=-1):\n    return x.exp() / x.exp().sum(dim, keepdim=True)\n" \
          "def attn(q):\n    return softmax(q)\n"
    assert tainted(src, NAMES) == {}


def test_taint_flows_through_helpers_and_module_level_use_taints_all():
    src = "import torch\ndef h(x): return torch.softmax(x, 0)\ndef f(x): return h(x)\ndef g(x): return x\n"
    assert set(tainted(src, NAMES)) == {"h", "f"}
    src2 = "from torch.nn.utils.rnn import pad_sequence\nP = pad_sequence\ndef f(x): return x\ndef g(x): return x\n"
    assert set(tainted(src2, NAMES)) == {"f", "g"}
    src3 = "from torch.nn.utils.rnn import pad_sequence\ndef f(x): return pad_sequence(x)\ndef g(x): return x\n"
    assert set(tainted(src3, NAMES)) == {"f"}


def test_namespace_entries_cover_everything_below_them():
    src = "import torch\ndef f(x): return torch.nn.utils.rnn.pad_sequence(x)\n"
    assert tainted(src, NAMES) == {"f": ["torch.nn.utils.rnn"]}


def test_a_file_that_does_not_parse_taints_nothing():
    assert tainted("def f(:\n", NAMES) == {}
