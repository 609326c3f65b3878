"""The parent's side of the process split: start a child, send it calls, judge nothing there.

The grader (this process) owns every expected value and every comparison.
The child (``grader/child.py``) imports the submission and runs one function
per request; it sends back plain data only. Whatever the submission does to
its own process (hang, crash, exit, exhaust memory) ends that child: the call
becomes a ``timeout`` or ``error`` outcome and the next call starts a new one.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from grader import child as wire

CHILD_SOURCE = Path(wire.__file__).read_text()
# The confinement layers the last child reported (for reports and tests).
LAST_CONFINEMENT: dict = {}


class SubmissionError(Exception):
    """The submission's code failed; ``kind`` is the test outcome it earns."""

    kind = "error"


class SubmissionTimeout(SubmissionError):
    kind = "timeout"


class ForbiddenCall(SubmissionError):
    kind = "forbidden"


@dataclass
class Limits:
    """What one submission may use. Seconds are wall-clock."""

    call_timeout: float = 30.0
    start_timeout: float = 120.0
    topic_timeout: float = 120.0
    memory_bytes: int = 6 << 30
    file_bytes: int = 32 << 20
    threads: int = 1


@dataclass
class Result:
    """One call's outcome: the return value and the arguments as they were after the call."""

    value: object
    args: list
    kwargs: dict = field(default_factory=dict)


def _rlimits(limits: Limits, device: str) -> list[tuple[str, int, int]]:
    """(name, soft, hard) for the child: output size, no core dumps, CPU seconds, memory."""
    cpu = int(limits.topic_timeout * max(1, limits.threads)) + 30
    out = [("RLIMIT_FSIZE", limits.file_bytes, limits.file_bytes), ("RLIMIT_CORE", 0, 0),
           ("RLIMIT_CPU", cpu, cpu + 5)]
    # CUDA maps huge virtual ranges, so an address-space cap only fits the CPU.
    if device == "cpu":
        out.append(("RLIMIT_AS", limits.memory_bytes, limits.memory_bytes))
    return out


# -- confinement policy ----------------------------------------------------------------
#
# The child applies it (``child.confine``); the parent decides it here. The file
# system is readable except for private trees: the kit (reference solutions, hidden
# graders, the corpus of tests), the learner's workspace, the temp folder (other
# submissions' scratch folders), /dev, /proc, the folder the submission came from, and
# whatever SEQLINGS_PRIVATE lists (grade-batch adds the class's folder and its
# outputs). The Python installation stays readable even where it lies inside a
# private tree (a virtual environment in the kit's folder). Only the scratch folder
# is writable.

NOBODY = 65534
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _python_paths() -> list[Path]:
    import site
    import sysconfig

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(),
             *(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))}
    return sorted({Path(p).resolve() for p in paths if p and Path(p).exists()})


def private_paths(extra: tuple[Path, ...] = ()) -> list[Path]:
    from grader import course

    root = course.kit_root()
    python = _python_paths()
    # Installed into site-packages, the kit's folder is the Python install itself: hide its parts.
    kit = ([root / name for name in ("grader", "reference", "exercises", "tests")]
           if any(root.is_relative_to(p) for p in python) else [root])
    # /proc: the child gets its own entry and a few system-wide files (child.confine), not the
    # grader's environment or open files.
    found = [*kit, course.workspace(), Path(tempfile.gettempdir()), Path("/dev"), Path("/proc"), *extra]
    found += [Path(p) for p in os.environ.get("SEQLINGS_PRIVATE", "").split(os.pathsep) if p]
    return sorted({p.resolve() for p in found if p.exists()})


def readable_paths(private: list[Path], keep: list[Path]) -> list[str]:
    """The fewest trees whose union is the file system minus ``private``, plus ``keep``."""
    private_set = set(private)
    grants: list[str] = []

    def visit(folder: Path) -> None:
        if folder in private_set:
            return
        if not any(p != folder and p.is_relative_to(folder) for p in private):
            grants.append(str(folder))
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.is_symlink():  # a link is reached through its target's own grant
                visit(Path(entry.path))

    visit(Path("/"))
    for path in keep:
        if any(path.is_relative_to(p) for p in private):
            visit(path)
    return grants


def _world_readable(paths: list[Path]) -> bool:
    """Can an unprivileged user read (and traverse to) every one of ``paths``?"""
    import stat

    for path in paths:
        for folder in (path, *path.parents):
            try:
                mode = folder.stat().st_mode
            except OSError:
                return False
            need = stat.S_IXOTH | (stat.S_IROTH if folder == path else 0)
            if mode & need != need:
                return False
    return True


def policy(scratch: Path, device: str, extra_private: tuple[Path, ...] = ()) -> dict:
    """What the child may touch. ``SEQLINGS_SANDBOX=process`` keeps only the process split (debugging)."""
    if os.environ.get("SEQLINGS_SANDBOX") == "process" or not sys.platform.startswith("linux"):
        return {}
    python = _python_paths()
    out = {"read": _readable(tuple(private_paths(extra_private)), tuple(python)),
           "write": [str(scratch)],
           "devices": [d for d in DEVICES if os.path.exists(d)]}
    if device == "cuda":
        import glob

        out["devices"] += sorted(glob.glob("/dev/nvidia*"))
    if os.getuid() == 0 and _world_readable(python):
        out["uid"] = out["gid"] = NOBODY
        os.chown(scratch, NOBODY, NOBODY)
    return out


@functools.lru_cache(maxsize=None)
def _readable(private: tuple[Path, ...], keep: tuple[Path, ...]) -> list[str]:
    """``readable_paths``, once per (private, keep) in a grading process."""
    return readable_paths(list(private), list(keep))


class ForkServer:
    """A warm process with torch imported that forks each submission's process (one per grader process).

    Forking skips the ~1.5 s torch import per child. The server runs the same
    child source in its own session; if a submission kills it, the next
    request starts a new one.
    """

    _instance: "ForkServer | None" = None
    _owner_pid: int = 0

    def __init__(self):
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", CHILD_SOURCE], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SEQLINGS_ZYGOTE_FD": str(theirs.fileno()),
                 **{k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH") if k in os.environ}},
            start_new_session=True, cwd=tempfile.gettempdir(),
        )
        theirs.close()

    @classmethod
    def get(cls) -> "ForkServer":
        # A forked grader process (e.g. a batch worker) must not share its parent's server.
        if cls._instance is None or cls._owner_pid != os.getpid() or cls._instance.proc.poll() is not None:
            cls._instance, cls._owner_pid = ForkServer(), os.getpid()
            atexit.register(cls._instance.stop)
        return cls._instance

    def ask(self, request: dict, fds: tuple[int, ...] = (), timeout: float = 120.0) -> dict:
        socket.send_fds(self.sock, [json.dumps(request).encode()], list(fds))
        if not select.select([self.sock], [], [], timeout)[0]:
            raise OSError("the fork server did not answer")
        data = self.sock.recv(1 << 16)
        if not data:
            raise OSError("the fork server is gone")
        return json.loads(data)

    def stop(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def prestart() -> None:
    """Start the fork server now, so its torch import overlaps with the grader's own start-up."""
    if os.environ.get("SEQLINGS_FORKSERVER", "1") != "0" and hasattr(socket, "send_fds"):
        ForkServer.get()


class _Forked:
    """The handle of a forked child: the parts of Popen the sandbox uses."""

    def __init__(self, server: ForkServer, pid: int):
        self.server, self.pid, self.returncode = server, pid, None

    def poll(self):
        return self.returncode

    def wait(self, timeout: float = 5.0):
        if self.returncode is None:
            try:
                code = self.server.ask({"op": "wait", "pid": self.pid, "timeout": timeout}, timeout=timeout + 30)["code"]
            except OSError:
                code = "gone"
            if code is None:
                raise subprocess.TimeoutExpired("child", timeout)
            self.returncode = -signal.SIGKILL if code == "gone" else code
        return self.returncode


def _start(path_env: dict, scratch: Path, output, fds: tuple[int, int], limits: Limits, device: str):
    """Fork the child from the warm server; fall back to a fresh interpreter where that fails."""
    if os.environ.get("SEQLINGS_FORKSERVER", "1") != "0" and hasattr(socket, "send_fds"):
        for _ in range(2):
            server = ForkServer.get()
            try:
                pid = server.ask({"op": "fork", "cwd": str(scratch), "env": path_env,
                                  "limits": _rlimits(limits, device)}, fds=(*fds, output.fileno()))["pid"]
                return _Forked(server, pid)
            except OSError:
                server.stop()  # killed or wedged (perhaps by a submission): start another
    env = dict(path_env, SEQLINGS_FD_IN=str(fds[0]), SEQLINGS_FD_OUT=str(fds[1]))
    lims = _rlimits(limits, device)

    def apply() -> None:
        for name, soft, hard in lims:
            resource.setrlimit(getattr(resource, name), (soft, hard))

    return subprocess.Popen(
        [sys.executable, "-I", "-c", CHILD_SOURCE],
        stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        pass_fds=fds, cwd=scratch, env=env, start_new_session=True, preexec_fn=apply,
    )


class Child:
    """One child process with the submission imported."""

    def __init__(self, path: Path, module_name: str, forbidden: list[str], device: str, limits: Limits,
                 kernels: list[str] = ()):
        self.path, self.module_name, self.forbidden = path, module_name, forbidden
        try:
            source = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise SubmissionError(f"cannot read {path}: {exc.strerror}") from None
        self.device, self.limits = device, limits
        self.scratch = Path(tempfile.mkdtemp(prefix="seqlings-child-"))
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.scratch),
            "TMPDIR": str(self.scratch),
            "OMP_NUM_THREADS": str(limits.threads),
        }
        for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
            if key in os.environ:
                env[key] = os.environ[key]
        self.output = open(self.scratch / "output.txt", "wb")
        self.proc = _start(env, self.scratch, self.output, (to_child_r, from_child_w), limits, device)
        os.close(to_child_r)
        os.close(from_child_w)
        self.fd_out, self.fd_in = to_child_w, from_child_r
        reply = self.request(
            {"op": "load", "path": str(path), "source": source, "name": module_name, "device": device,
             "forbidden": forbidden, "kernels": list(kernels), "threads": limits.threads,
             "confine": policy(self.scratch, device, (path.parent,))},
            timeout=limits.start_timeout,
        )
        self.load_ok = bool(reply.get("ok"))
        self.confined = reply.get("confined") or {}
        global LAST_CONFINEMENT
        LAST_CONFINEMENT = dict(self.confined)

    def request(self, msg: dict, timeout: float) -> dict:
        header, blob = wire.encode(msg)
        try:
            wire.write_frame(self.fd_out, header, blob)
            deadline = time.monotonic() + timeout
            head = self._read(16, deadline)
            n_header, n_blob = struct.unpack("<QQ", head)
            if n_header + n_blob > wire.MAX_FRAME_BYTES:
                raise SubmissionError(f"your code sent back {n_header + n_blob} bytes; outputs this large are refused")
            header = self._read(n_header, deadline)
            blob = self._read(n_blob, deadline)
        except (BrokenPipeError, EOFError):
            raise SubmissionError(self._death_message()) from None
        try:
            return wire.decode(header, blob)
        except Exception as exc:  # noqa: BLE001 - a malformed frame is the submission's doing
            raise SubmissionError(f"your code sent back something that is not plain data ({exc})") from None

    def _read(self, n: int, deadline: float) -> bytes:
        chunks = []
        while n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd_in], [], [], left)[0]:
                self.kill()
                raise SubmissionTimeout("timed out")
            chunk = os.read(self.fd_in, min(n, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def _death_message(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            return "your code closed the grader's channel"
        self.kill()
        tail = self.printed_tail()
        if code < 0:
            sig = signal.Signals(-code).name
            why = {"SIGKILL": " (most often: it used more memory than allowed)",
                   "SIGXCPU": " (it used more CPU time than allowed)",
                   "SIGSEGV": " (a crash inside native code)",
                   "SIGXFSZ": " (it wrote more output than allowed)"}.get(sig, "")
            text = f"the process running your code was killed by {sig}{why}"
        else:
            text = f"your code ended the process (exit code {code}, e.g. os._exit or a crash)"
        if "MemoryError" in tail or "alloc" in tail.lower():
            text += "; it ran out of memory"
        return text

    def printed_tail(self, limit: int = 400) -> str:
        try:
            data = (self.scratch / "output.txt").read_bytes()
        except OSError:
            return ""
        return data[-limit:].decode(errors="replace")

    def kill(self) -> None:
        """End the child and everything it started (its own session)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # grandchildren left behind
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        self.kill()
        for fd in (self.fd_out, self.fd_in):
            try:
                os.close(fd)
            except OSError:
                pass
        self.output.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


class Submission:
    """A submission seen from the grader: call its functions as if they were local.

    ``sub.softmax(x)`` returns the child's output as plain tensors. ``sub.call``
    also returns the arguments after the call (with ``.grad`` on inputs that
    require grad when ``grad_outputs`` is given) for tests about in-place work
    and gradients.
    """

    def __init__(self, path: Path, module_name: str, *, forbidden: list[str] = (),
                 kernels: list[str] = (), tainted: dict[str, list[str]] | None = None, device: str = "cpu",
                 limits: Limits | None = None):
        self.path = Path(path)
        self.module_name = module_name
        self.forbidden = list(forbidden)
        self.kernels = list(kernels)
        self.tainted = tainted or {}
        self.device = device
        self.limits = limits or Limits()
        self.started = time.monotonic()
        self._child: Child | None = None

    def __getattr__(self, fn: str):
        if fn.startswith("_"):
            raise AttributeError(fn)
        return lambda *args, **kwargs: self.call(fn, *args, **kwargs).value

    def call(self, fn: str, *args, grad_outputs=None, mutates: bool = False, **kwargs) -> Result:
        if fn in self.tainted:
            raise ForbiddenCall(f"`{fn}` uses {', '.join(sorted(set(self.tainted[fn])))}, "
                                "which this exercise puts off limits")
        left = self.limits.topic_timeout - (time.monotonic() - self.started)
        if left <= 0:
            raise SubmissionTimeout(f"the time for the whole topic ({self.limits.topic_timeout:.0f}s) ran out")
        child = self._ensure_child()
        timeout = min(self.limits.call_timeout, left)
        try:
            reply = child.request({"op": "call", "fn": fn, "args": list(args), "kwargs": kwargs,
                                   "grad_outputs": grad_outputs}, timeout=timeout)
        except SubmissionTimeout:
            self._drop_child()
            raise SubmissionTimeout(f"`{fn}` did not return within {timeout:.0f}s "
                                    "(an endless loop, or far too slow)") from None
        except SubmissionError:
            self._drop_child()
            raise
        if not reply.get("ok"):
            kind, message = reply.get("kind"), str(reply.get("message", ""))
            if kind == "forbidden":
                names = ", ".join(sorted(set(map(str, reply.get("forbidden") or [])))) or "an off-limits function"
                raise ForbiddenCall(f"`{fn}` called {names}, which this exercise puts off limits")
            if "NotImplementedError" in message:
                raise SubmissionError(f"`{fn}` is not implemented yet (it raises NotImplementedError)")
            if reply.get("sentence"):
                raise SubmissionError(message)
            raise SubmissionError(f"`{fn}` raised {message}")
        result = Result(reply.get("value"), list(reply.get("args", [])), dict(reply.get("kwargs", {})))
        if any(True for _ in _tensors((list(args), kwargs))):
            # Only a function given tensors can be held to their device.
            self._check_devices(fn, result.value)
        if not mutates:
            _check_untouched(fn, list(args), result.args, kwargs, result.kwargs)
        return result

    def _check_devices(self, fn: str, value) -> None:
        import torch

        want = torch.device(self.device).type
        for t in _tensors(value):
            got = wire.device_of(t).split(":")[0]
            if got != want:
                raise AssertionError(f"`{fn}` returned a tensor on {got} for inputs on {want}: "
                                     "create new tensors with device=x.device (or torch.zeros_like) "
                                     "instead of a fixed device")

    def _ensure_child(self) -> Child:
        if self._child is None:
            self._child = Child(self.path, self.module_name, self.forbidden, self.device, self.limits,
                                self.kernels)
        return self._child

    def _drop_child(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    def close(self) -> None:
        self._drop_child()


def _tensors(x):
    import torch

    if isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, (list, tuple, wire.OneShot)):
        for v in (x.items if isinstance(x, wire.OneShot) else x):
            yield from _tensors(v)
    elif isinstance(x, dict):
        for v in x.values():
            yield from _tensors(v)


def _check_untouched(fn: str, args: list, args_after: list, kwargs: dict, kwargs_after: dict) -> None:
    """Inputs must come back as they went in: no in-place edits."""
    import torch

    def same(a, b) -> bool:
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        a, b = a.detach(), b.detach()
        if a.is_floating_point():
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return bool((a == b).all())

    named = [(f"argument {i + 1}", a, b) for i, (a, b) in enumerate(zip(args, args_after))]
    named += [(f"argument `{k}`", v, kwargs_after.get(k)) for k, v in kwargs.items()]
    for label, before, after in named:
        flat_before, flat_after = list(_tensors(before)), list(_tensors(after))
        if len(flat_before) != len(flat_after) or not all(
                isinstance(b, torch.Tensor) and same(a, b) for a, b in zip(flat_before, flat_after)):
            raise AssertionError(f"`{fn}` modified its {label} in place: work on a copy "
                                 "(out-of-place ops such as x = x - m, not x -= m or x.sub_(m))")
