"""The process that runs a submission, and the wire format it talks.

The parent (the grader) starts this file as ``python -I -c <this source>``, so
the child imports nothing from the kit: its ``sys.path`` holds the standard
library and site-packages only, and its working directory is a scratch folder.

Only plain data crosses the pipe, in both directions:
  a frame = 8-byte length of a JSON header + 8-byte length of a blob + both.
The JSON describes the structure (lists, tuples, dicts with string keys,
numbers, strings, None, dtypes) and refers to tensors by index; the blob is a
safetensors file holding those tensors. Neither format can run code on load.

The parent imports ``encode`` and ``decode`` from here too, so both ends speak
one format.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import traceback
import types

# Tensors the parent accepts: nothing exotic, nothing that needs custom code.
PLAIN_DTYPES = (
    "float16", "bfloat16", "float32", "float64",
    "int8", "int16", "int32", "int64", "uint8", "bool",
)
MAX_FRAME_BYTES = 1 << 30


class WireError(ValueError):
    """A frame that does not follow the format."""


# -- encoding ----------------------------------------------------------------

def encode(obj, refs: dict | None = None) -> tuple[bytes, bytes]:
    """Turn plain data (with tensors) into (json bytes, safetensors bytes).

    With ``refs`` (the child's replies), an object that is not plain data
    stays in the child, in ``refs``, and crosses as a handle the parent can
    pass back (``rnn_forward``'s opaque cache, for example).
    """
    import torch
    from safetensors.torch import save

    tensors: dict[str, "torch.Tensor"] = {}

    def put(t: "torch.Tensor") -> str:
        key = str(len(tensors))
        # A Tensor subclass is reduced to its storage: only its numbers cross.
        plain = torch.Tensor._make_subclass(torch.Tensor, t.detach()) if type(t) is not torch.Tensor else t.detach()
        tensors[key] = plain.to("cpu").contiguous().clone()
        return key

    def walk(x):
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return x
        if isinstance(x, float):
            return {"$float": repr(x)} if not math.isfinite(x) else x
        if isinstance(x, torch.Tensor):
            node = {"$tensor": put(x), "device": str(x.device), "rg": bool(x.requires_grad)}
            if x.requires_grad and x.is_leaf and x.grad is not None:
                node["grad"] = put(x.grad)
            elif x.requires_grad and x.is_leaf:
                node["grad"] = None
            return node
        if isinstance(x, torch.dtype):
            return {"$dtype": str(x).removeprefix("torch.")}
        if isinstance(x, torch.Size):
            return {"$tuple": [int(d) for d in x]}
        if isinstance(x, tuple):
            return {"$tuple": [walk(v) for v in x]}
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x):
                if refs is not None:  # not plain data: it stays in the child as a handle
                    key = len(refs) + 1
                    refs[key] = x
                    return {"$ref": key}
                raise WireError("only dicts with string keys can be sent")
            return {"$dict": [[k, walk(v)] for k, v in x.items()]}
        if isinstance(x, (OneShot, OnceIter)):
            return {"$oneshot": [walk(v) for v in x.items]}
        if isinstance(x, Seeded):
            return {"$generator": int(x.seed)}
        if isinstance(x, torch.Generator):
            # Its state comes back too, so the grader can tell how many numbers were drawn.
            return {"$generator": int(x.initial_seed()), "state": put(x.get_state())}
        if isinstance(x, ScriptedDecoder):
            return {"$decoder": {"emb": walk(x.emb), "w_h": walk(x.w_h), "w_out": walk(x.w_out),
                                 "fed": [walk(t) for t in x.fed]}}
        if isinstance(x, Ref):
            return {"$ref": x.key}
        if refs is not None:
            key = len(refs) + 1
            refs[key] = x
            return {"$ref": key}
        raise WireError(f"cannot send a value of type {type(x).__name__}")

    header = json.dumps(walk(obj)).encode()
    blob = save(tensors) if tensors else b""
    return header, blob


def decode(header: bytes, blob: bytes, *, child_side: bool = False, device: str = "cpu",
           refs: dict | None = None):
    """Inverse of ``encode``. Rejects anything that is not plain data.

    On the child side tensors are moved to ``device`` and leaf tensors get
    their ``requires_grad`` and ``.grad`` back; ``$oneshot`` lists become
    one-shot iterators and ``$generator`` seeds become torch.Generators.
    """
    import torch
    from safetensors.torch import load

    tensors = load(blob) if blob else {}
    for key, t in tensors.items():
        if str(t.dtype).removeprefix("torch.") not in PLAIN_DTYPES:
            raise WireError(f"tensor of dtype {t.dtype} is not accepted")

    def get(key):
        if key not in tensors:
            raise WireError(f"frame refers to a missing tensor {key!r}")
        return tensors[key]

    def walk(x):
        if x is None or isinstance(x, (bool, str, int, float)):
            return x
        if isinstance(x, list):
            return [walk(v) for v in x]
        if not isinstance(x, dict) or len(x) == 0:
            raise WireError("malformed frame")
        if "$tensor" in x:
            t = get(x["$tensor"])
            if child_side:
                t = t.to(device)
                if x.get("rg"):
                    t.requires_grad_(True)
                    if x.get("grad") is not None:
                        t.grad = get(x["grad"]).to(device)
            else:
                if x.get("rg") and t.is_floating_point():
                    t.requires_grad_(True)
                    if x.get("grad") is not None:
                        t.grad = get(x["grad"])
                # The device the child's tensor lived on, for the parent's checks.
                _DEVICES[id(t)] = str(x.get("device", "cpu"))
            return t
        if "$float" in x:
            return float(x["$float"])
        if "$dtype" in x:
            name = x["$dtype"]
            if name not in PLAIN_DTYPES:
                raise WireError(f"dtype {name!r} is not accepted")
            return getattr(torch, name)
        if "$tuple" in x:
            return tuple(walk(v) for v in x["$tuple"])
        if "$dict" in x:
            return {str(k): walk(v) for k, v in x["$dict"]}
        if "$oneshot" in x:
            items = [walk(v) for v in x["$oneshot"]]
            return OnceIter(items) if child_side else OneShot(items)
        if "$generator" in x:
            seed = int(x["$generator"])
            if child_side:
                return torch.Generator().manual_seed(seed)
            return Seeded(seed, state=get(x["state"]) if x.get("state") is not None else None)
        if "$decoder" in x:
            d = x["$decoder"]
            return ScriptedDecoder(walk(d["emb"]), walk(d["w_h"]), walk(d["w_out"]),
                                   fed=[walk(t) for t in d.get("fed", [])])
        if "$ref" in x:
            key = int(x["$ref"])
            if not child_side:
                return Ref(key)
            if refs is None or key not in refs:
                raise WireError("a handle from an earlier process was passed back; the process was restarted")
            return refs[key]
        raise WireError("malformed frame")

    return walk(json.loads(header))


# Device of each decoded tensor (parent side), keyed by id: only read right
# after decoding, while the tensors are alive.
_DEVICES: dict[int, str] = {}


def device_of(t) -> str:
    return _DEVICES.get(id(t), str(t.device))


class OneShot:
    """Arrives in the child as a one-shot iterator (like ``model.parameters()``)."""

    def __init__(self, items):
        self.items = list(items)


class Ref:
    """A handle to an object that stays in the child (never its contents)."""

    def __init__(self, key: int):
        self.key = int(key)

    def __repr__(self) -> str:
        return f"<object kept in the submission's process #{self.key}>"


class ScriptedDecoder:
    """A tiny RNN decoder ``step_fn(tokens (B,), h (B,H)) -> (logits (B,V), h)`` that records its inputs.

    h' = tanh(emb[tokens] + h @ w_h), logits = h' @ w_out.T with emb (V,H),
    w_h (H,H), w_out (V,H). With a tuple state (h, c), as an LSTM has:
    h' = tanh(emb[tokens] + h @ w_h + c), c' = 0.5 c + 0.1 h'. Built in the child from its weights (plain data),
    so the grader can hand the submission a decoder without sending code, and
    read back exactly which tokens it was fed (``fed``, one (B,) tensor per step).
    """

    def __init__(self, emb, w_h, w_out, fed=None):
        self.emb, self.w_h, self.w_out = emb, w_h, w_out
        self.fed = list(fed or [])

    def __call__(self, tokens, state):
        import torch

        if not isinstance(tokens, torch.Tensor) or tokens.dim() != 1 or tokens.dtype != torch.int64:
            raise TypeError(f"step_fn expects tokens as a (B,) int64 tensor, got "
                            f"{getattr(tokens, 'dtype', type(tokens).__name__)} of shape {tuple(getattr(tokens, 'shape', ()))}")
        self.fed.append(tokens.detach().clone())
        if isinstance(state, (tuple, list)):  # an LSTM-like (h, c) state
            h, c = state
            h = torch.tanh(self.emb[tokens] + h @ self.w_h + c)  # (B, H)
            return h @ self.w_out.T, (h, 0.5 * c + 0.1 * h)  # (B, V), ((B, H), (B, H))
        h = torch.tanh(self.emb[tokens] + state @ self.w_h)  # (B, H)
        return h @ self.w_out.T, h  # (B, V), (B, H)


class OnceIter:
    """A one-shot iterator that still remembers its items, to send them back."""

    def __init__(self, items):
        self.items = list(items)
        self._it = iter(self.items)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)


class Seeded:
    """Arrives in the child as ``torch.Generator().manual_seed(seed)``; comes back with its ``state``."""

    def __init__(self, seed: int, state=None):
        self.seed = int(seed)
        self.state = state


def write_frame(fd: int, header: bytes, blob: bytes) -> None:
    data = struct.pack("<QQ", len(header), len(blob)) + header + blob
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("pipe closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> tuple[bytes, bytes]:
    n_header, n_blob = struct.unpack("<QQ", read_exact(fd, 16))
    if n_header + n_blob > MAX_FRAME_BYTES:
        raise WireError(f"frame of {n_header + n_blob} bytes is too large")
    return read_exact(fd, n_header), read_exact(fd, n_blob)


# -- the child's side ----------------------------------------------------------

class _GraderSide(Exception):
    """A problem the grader found in the child (not an exception of the submission's code)."""


class ForbiddenCall(Exception):
    """Raised in the child when the submission calls an off-limits function."""


class Guard:
    """Replaces off-limits callables and records every attempt to use them.

    ``names`` are dotted Python names (replaced by blockers, and recognised by
    identity when reached another way). ``kernels`` are the names of the
    operators under them (``_scaled_dot_product_attention_math``, ``lstm``):
    a call to ``torch.ops.aten.<kernel>`` or to a built-in of that name in
    ``torch._C`` is caught by the function mode too.
    """

    def __init__(self, names: list[str], kernels: list[str] = ()):
        import torch

        self.hits: list[str] = []
        self.originals: dict[int, str] = {}
        self.kernels = frozenset(kernels)
        op_types = (torch._ops.OpOverload, torch._ops.OpOverloadPacket)
        builtin_types = (types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType)
        for name in names:
            owner, attr, target = _resolve(name)
            if target is None:
                continue
            if isinstance(target, types.ModuleType):
                # A whole namespace is off limits: block what it defines, keep the module
                # object itself, which torch's own code may still reach through.
                for sub in dir(target):
                    value = getattr(target, sub, None)
                    if not sub.startswith("_") and callable(value) and not isinstance(value, types.ModuleType):
                        self._block(target, sub, value, f"{name}.{sub}")
                continue
            self._block(owner, attr, target, name)
        guard = self

        def kernel_of(func) -> str | None:
            if isinstance(func, op_types):
                name = func.name() if isinstance(func, torch._ops.OpOverload) else func._qualified_op_name
                kernel = name.split("::")[-1].split(".")[0]
                return f"torch.ops.{name.replace('::', '.')}" if kernel in guard.kernels else None
            if isinstance(func, builtin_types) and getattr(func, "__name__", None) in guard.kernels:
                return f"torch kernel {func.__name__}"
            return None

        class Mode(torch.overrides.TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = guard.originals.get(id(func)) or (kernel_of(func) if guard.kernels else None)
                if name is not None:
                    guard.hit(name)
                return func(*args, **(kwargs or {}))

        self.mode = Mode

    def run(self, fn, *args, **kwargs):
        """Call ``fn`` under the function mode; taking the mode off the stack counts as a forbidden call."""
        import torch

        mode = self.mode()
        with mode:
            value = fn(*args, **kwargs)
            if mode not in torch.overrides._get_current_function_mode_stack():
                self.hits.append("removing the grader's guard (torch function mode stack)")
        return value

    def _block(self, owner, attr: str, target, name: str) -> None:
        self.originals[id(target)] = name
        try:
            setattr(owner, attr, self._blocker(name))
        except (AttributeError, TypeError):
            pass  # read-only attribute: the function mode below still sees it

    def hit(self, name: str):
        self.hits.append(name)
        raise ForbiddenCall(f"{name} is off limits in this exercise")

    def _blocker(self, name: str):
        def blocked(*args, **kwargs):
            self.hit(name)
        blocked.__name__ = name.rsplit(".", 1)[-1]
        return blocked


def _resolve(dotted: str):
    """'torch.nn.functional.softmax' -> (torch.nn.functional, 'softmax', obj)."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:-1]:
            owner = getattr(owner, attr, None)
            if owner is None:
                return None, None, None
        return owner, parts[-1], getattr(owner, parts[-1], None)
    return None, None, None


def _format_exception(exc: BaseException, path: str) -> tuple[str, str]:
    """The exception as a learner wants it: type, message, their own frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    where = ""
    if frames:
        last = frames[-1]
        where = f" (line {last.lineno}: {(last.line or '').strip()})"
    if isinstance(exc, SystemExit):
        return "SystemExit", f"your code called sys.exit({exc.code!r}){where}"
    if isinstance(exc, KeyboardInterrupt):
        return "KeyboardInterrupt", f"your code raised KeyboardInterrupt{where}"
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return type(exc).__name__, f"{type(exc).__name__}: {first}{where}"


# -- confinement ---------------------------------------------------------------------
#
# Applied in the child just before the submission's code is loaded, each layer where
# the system offers it (Linux; the parent decides the policy, ``sandbox.policy``):
#   uid     running as root: drop to an unprivileged user (no capabilities, no signals to
#           the grader, no raw devices), when that user can still read the Python install;
#   landlock  the file system becomes read-only, and unreadable in the kit, the
#           learner's folders, other submissions and the temp folder; the scratch folder
#           is the only place to write; no TCP; no signals or abstract sockets reaching
#           outside the child (Landlock ABI 6+);
#   seccomp no new processes (fork, exec, clone without CLONE_THREAD), no sockets, no
#           ptrace, signals only to itself, no administration syscalls.

_LANDLOCK_FS = {  # access right -> first ABI with it
    "execute": (1 << 0, 1), "write_file": (1 << 1, 1), "read_file": (1 << 2, 1), "read_dir": (1 << 3, 1),
    "remove_dir": (1 << 4, 1), "remove_file": (1 << 5, 1), "make_char": (1 << 6, 1), "make_dir": (1 << 7, 1),
    "make_reg": (1 << 8, 1), "make_sock": (1 << 9, 1), "make_fifo": (1 << 10, 1), "make_block": (1 << 11, 1),
    "make_sym": (1 << 12, 1), "refer": (1 << 13, 2), "truncate": (1 << 14, 3), "ioctl_dev": (1 << 15, 5),
}
_FILE_RIGHTS = ("execute", "write_file", "read_file", "truncate", "ioctl_dev")
_PROC_FILES = ("cpuinfo", "meminfo", "stat", "loadavg", "uptime", "version", "filesystems", "sys", "driver")

# Syscall numbers: (x86_64, aarch64); None where the call does not exist.
_SYSCALLS = {
    "fork": (57, None), "vfork": (58, None), "execve": (59, 221), "execveat": (322, 281),
    "clone": (56, 220), "clone3": (435, 435), "socket": (41, 198), "ptrace": (101, 117),
    "process_vm_readv": (310, 270), "process_vm_writev": (311, 271), "kill": (62, 129),
    "tkill": (200, 130), "tgkill": (234, 131), "rt_sigqueueinfo": (129, 138),
    "rt_tgsigqueueinfo": (297, 240), "pidfd_open": (434, 434), "pidfd_send_signal": (424, 424),
    "pidfd_getfd": (438, 438), "mount": (165, 40), "umount2": (166, 39), "unshare": (272, 97),
    "setns": (308, 268), "pivot_root": (155, 41), "chroot": (161, 51), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "kexec_load": (246, 104),
    "reboot": (169, 142), "bpf": (321, 280), "perf_event_open": (298, 241), "seccomp": (317, 277),
}
_NO_PROCESS = ("fork", "vfork", "execve", "execveat", "socket", "ptrace", "process_vm_readv",
               "process_vm_writev", "tkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "mount",
               "umount2", "unshare", "setns", "pivot_root", "chroot", "init_module", "finit_module",
               "delete_module", "kexec_load", "reboot", "bpf", "perf_event_open")


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _drop_user(uid: int, gid: int) -> bool:
    try:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError:
        return False
    return True


def _landlock(policy: dict) -> int:
    """Restrict this process's file system, TCP and signal reach; returns the ABI used (0: none)."""
    import ctypes

    libc = _libc()
    abi = libc.syscall(ctypes.c_long(444), None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return 0

    def rights(names) -> int:
        return sum(bit for name, (bit, first) in _LANDLOCK_FS.items() if name in names and first <= abi)

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    everything = rights(_LANDLOCK_FS)
    attr = RulesetAttr(everything, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(ctypes.c_long(444), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return 0
    try:
        read = rights(("execute", "read_file", "read_dir"))
        grants = [(path, read) for path in policy.get("read", [])]
        # Its own /proc entry and a few system-wide files (the grader's entry stays out of reach).
        grants += [(f"/proc/{os.getpid()}", read)] + [(f"/proc/{name}", read) for name in _PROC_FILES]
        grants += [(path, everything) for path in policy.get("write", [])]
        grants += [(path, rights(("read_file", "write_file", "truncate", "ioctl_dev"))) for path in policy.get("devices", [])]
        for path, allowed in grants:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    allowed &= rights(_FILE_RIGHTS)
                rule = PathBeneath(allowed, fd)
                libc.syscall(ctypes.c_long(445), ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule),
                             ctypes.c_uint32(0))
            finally:
                os.close(fd)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            return 0
        if libc.syscall(ctypes.c_long(446), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return 0
    finally:
        os.close(ruleset)
    return abi


def _seccomp() -> bool:
    """No new processes, sockets, ptrace or signals to others; returns whether the filter is on."""
    import ctypes
    import platform

    machine = platform.machine()
    if machine not in ("x86_64", "aarch64"):
        return False
    column = 0 if machine == "x86_64" else 1
    audit_arch = 0xC000003E if machine == "x86_64" else 0xC00000B7
    nr = {name: numbers[column] for name, numbers in _SYSCALLS.items() if numbers[column] is not None}
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    pid = os.getpid()
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, audit_arch), (ret, 0, 0, eperm), (ld, 0, 0, 0)]
    if machine == "x86_64":
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # the x32 ABI
    for name in _NO_PROCESS:
        if name in nr:
            prog += [(jeq, 0, 1, nr[name]), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, nr["clone3"]), (ret, 0, 0, enosys)]  # libc falls back to clone for threads
    prog += [(jeq, 0, 4, nr["clone"]), (ld, 0, 0, 16), (jset, 0, 1, 0x00010000),  # CLONE_THREAD
             (ret, 0, 0, allow), (ret, 0, 0, eperm)]
    # kill(pid) only to itself or its own process group (0, -pid).
    prog += [(jeq, 0, 6, nr["kill"]), (ld, 0, 0, 16), (jeq, 3, 0, pid), (jeq, 2, 0, 0),
             (jeq, 1, 0, (-pid) & 0xFFFFFFFF), (ret, 0, 0, eperm), (ret, 0, 0, allow)]
    for name in ("tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
        prog += [(jeq, 0, 4, nr[name]), (ld, 0, 0, 16), (jeq, 1, 0, pid), (ret, 0, 0, eperm), (ret, 0, 0, allow)]
    prog += [(ret, 0, 0, allow)]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*f) for f in prog])
    fprog = Program(len(prog), filters)
    libc = _libc()
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    # seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, prog): every thread of the process.
    return libc.syscall(ctypes.c_long(nr["seccomp"]), ctypes.c_uint(1), ctypes.c_uint(1), ctypes.byref(fprog)) == 0


def confine(policy: dict) -> dict:
    """Apply the parent's confinement policy to this process; returns the layers that took effect."""
    applied: dict = {}
    if not policy or not sys.platform.startswith("linux"):
        return applied
    if policy.get("uid") is not None and os.getuid() == 0:
        if _drop_user(int(policy["uid"]), int(policy["gid"])):
            applied["uid"] = os.getuid()
    try:
        if policy.get("landlock", True):
            applied["landlock"] = _landlock(policy)
        if policy.get("seccomp", True):
            applied["seccomp"] = _seccomp()
    except (OSError, AttributeError, ValueError):
        pass
    _die_with_parent()  # a change of user clears the parent-death signal
    return applied


def serve(fd_in: int, fd_out: int) -> None:
    import linecache

    import torch

    # Captured before any guard is installed: the child's own backward pass
    # must work even where the topic forbids autograd to the submission.
    autograd_backward = torch.autograd.backward
    module = None
    load_error = None
    path = ""
    device = "cpu"
    guard = None

    refs: dict = {}

    def reply(obj):
        try:
            header, blob = encode(obj, refs)
        except Exception as exc:  # e.g. the submission returned an object we do not send
            header, blob = encode({"ok": False, "kind": "error", "type": "TypeError", "sentence": True,
                                   "message": f"your function returned a value that cannot be sent back: {exc}"})
        write_frame(fd_out, header, blob)

    while True:
        try:
            header, blob = read_frame(fd_in)
        except EOFError:
            return
        msg = decode(header, blob, child_side=True, device=device, refs=refs)
        op = msg.get("op")
        if op == "load":
            path, device = msg["path"], msg["device"]
            torch.set_num_threads(int(msg.get("threads", 1)))
            guard = Guard(msg.get("forbidden", []), msg.get("kernels", []))
            # The source comes in the message: the child needs no access to the file's folder.
            source = msg["source"]
            linecache.cache[path] = (len(source), None, source.splitlines(True), path)
            confined = confine(msg.get("confine") or {})
            try:
                module = types.ModuleType(msg["name"])
                module.__file__ = path
                sys.modules[msg["name"]] = module
                code = compile(source, path, "exec", dont_inherit=True)
                guard.run(exec, code, module.__dict__)
                if guard.hits:
                    raise ForbiddenCall(", ".join(guard.hits))
            except BaseException as exc:  # noqa: BLE001 - any failure is the submission's
                kind, text = _format_exception(exc, path)
                load_error = {"ok": False, "kind": "forbidden" if guard.hits else "error", "sentence": True,
                              "type": kind, "message": f"importing your file failed: {text}",
                              "forbidden": guard.hits}
            reply({"ok": load_error is None, "confined": confined})
        elif op == "call":
            if load_error is not None:
                reply(load_error)
                continue
            fn = getattr(module, msg["fn"], None)
            if not callable(fn):
                reply({"ok": False, "kind": "error", "type": "AttributeError", "sentence": True,
                       "message": f"your file defines no function {msg['fn']!r}"})
                continue
            args, kwargs = msg["args"], msg["kwargs"]
            guard.hits.clear()
            try:
                value = guard.run(fn, *args, **kwargs)
                grad_outputs = msg.get("grad_outputs")
                if grad_outputs is not None:
                    guard.run(_backward, value, grad_outputs, autograd_backward)
            except _GraderSide as exc:
                reply({"ok": False, "kind": "error", "type": "Shape", "message": f"`{msg['fn']}` {exc}",
                       "sentence": True})
                continue
            except BaseException as exc:  # noqa: BLE001
                kind, text = _format_exception(exc, path)
                reply({"ok": False, "kind": "forbidden" if guard.hits else "error",
                       "type": kind, "message": text, "forbidden": list(guard.hits),
                       "sentence": kind in ("SystemExit", "KeyboardInterrupt")})
                continue
            if guard.hits:
                reply({"ok": False, "kind": "forbidden", "type": "ForbiddenCall",
                       "message": "used an off-limits function", "forbidden": list(guard.hits)})
                continue
            reply({"ok": True, "value": value, "args": list(args), "kwargs": kwargs})
        else:
            return


def _backward(value, grad_outputs, autograd_backward):
    """Backpropagate ``grad_outputs``, which mirrors the (possibly nested) outputs; None skips one."""
    import torch

    pairs = []

    def pair(o, g, where):
        if g is None:
            return
        if isinstance(g, torch.Tensor):
            if not isinstance(o, torch.Tensor):
                raise _GraderSide(f"returned {type(o).__name__} at {where or 'the top'} where a tensor was expected, "
                                  "so its gradient could not be checked")
            if o.shape != g.shape:
                raise _GraderSide(f"returned shape {tuple(o.shape)} at {where or 'the output'} where "
                                  f"{tuple(g.shape)} was expected, so its gradient could not be checked")
            if o.requires_grad:
                pairs.append((o, g))
            return
        if not isinstance(o, (tuple, list)) or len(o) != len(g):
            raise _GraderSide(f"returned {type(o).__name__} at {where or 'the top'} where a "
                              f"{len(g)}-tuple was expected, so its gradient could not be checked")
        for i, (oi, gi) in enumerate(zip(o, g)):
            pair(oi, gi, f"{where}[{i}]")

    pair(value, grad_outputs, "")
    if pairs:
        autograd_backward([o for o, _ in pairs], [g.to(o.device, o.dtype) for o, g in pairs])


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the fork server dies (PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def zygote(ctl_fd: int) -> None:
    """The fork server: import torch once, then fork one fresh child per submission process.

    Requests arrive on a SOCK_SEQPACKET socket as JSON, a fork request carrying
    three fds (pipe to the child, pipe from the child, the output file). The
    forked child starts its own session, applies the limits and serves; the
    zygote answers with its pid, and reaps it on a ``wait`` request.
    """
    import resource
    import socket
    import time

    import torch  # noqa: F401 - paid here once, inherited by every fork
    from safetensors.torch import load, save  # noqa: F401
    # Imported lazily by the first backward pass given explicit gradients (sympy and ~480
    # modules, ~0.45 s): once here, not once per submission process.
    import torch.fx.experimental.symbolic_shapes  # noqa: F401

    import signal

    ctl = socket.socket(fileno=ctl_fd)
    children: set[int] = set()

    def shut_down():
        # The grader is gone: no submission process outlives it.
        for pid in children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)

    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 3)
        except OSError:
            shut_down()
        if not msg:
            shut_down()
        req = json.loads(msg)
        if req["op"] == "fork":
            pid = os.fork()
            if pid == 0:
                try:
                    ctl.close()
                    os.setsid()
                    _die_with_parent()
                    fd_in, fd_out, fd_output = fds
                    devnull = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(devnull, 0)
                    os.dup2(fd_output, 1)
                    os.dup2(fd_output, 2)
                    os.chdir(req["cwd"])
                    os.environ.clear()
                    os.environ.update(req["env"])
                    for name, soft, hard in req["limits"]:
                        resource.setrlimit(getattr(resource, name), (soft, hard))
                    serve(fd_in, fd_out)
                finally:
                    os._exit(0)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            ctl.send(json.dumps({"pid": pid}).encode())
        elif req["op"] == "wait":
            deadline = time.monotonic() + float(req.get("timeout", 5))
            code = None
            while True:
                try:
                    done, status = os.waitpid(int(req["pid"]), os.WNOHANG)
                except ChildProcessError:
                    code = "gone"
                    children.discard(int(req["pid"]))
                    break
                if done:
                    code = os.waitstatus_to_exitcode(status)
                    children.discard(int(req["pid"]))
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            ctl.send(json.dumps({"code": code}).encode())


def main() -> None:
    if "SEQLINGS_ZYGOTE_FD" in os.environ:
        zygote(int(os.environ["SEQLINGS_ZYGOTE_FD"]))
    fd_in, fd_out = int(os.environ["SEQLINGS_FD_IN"]), int(os.environ["SEQLINGS_FD_OUT"])
    serve(fd_in, fd_out)
    os._exit(0)


if __name__ == "__main__":
    main()
