"""Static check for off-limits calls, on the submission's source, in the parent.

Reads imports to learn what each name stands for (an import alone is no use) (``import torch.nn.functional
as F``, ``from torch import softmax``), resolves attribute chains to dotted
names, and reports which top-level function uses what. A function is tainted
when it, or a module-level function it calls, uses an off-limits name; tests
that call a tainted function score ``forbidden``. The child's run-time guard
catches what a reading of the source cannot (names built at run time).

No torch here: this runs before any child starts.
"""

from __future__ import annotations

import ast
from collections import defaultdict

MODULE = "<module>"
# Torch's internals, off limits in every topic (statically): no drill needs them, and they are
# the way around the run-time guard (the function-mode stack, the raw kernels).
INTERNALS = ("torch._C", "torch.overrides", "torch._ops", "torch.ops", "torch.utils._python_dispatch")


def _dotted(node: ast.AST) -> list[str] | None:
    """`a.b.c` -> ['a', 'b', 'c']; None when the chain does not start at a name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, forbidden: list[str]):
        self.forbidden = forbidden
        # Off-limits Tensor methods: any `<expr>.name(...)` on something that is not a module.
        self.methods = {f.rsplit(".", 1)[1]: f for f in forbidden if f.startswith("torch.Tensor.")}
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        self.defined: set[str] = set()
        self.current = MODULE
        self.uses: dict[str, list[str]] = defaultdict(list)
        self.calls: dict[str, set[str]] = defaultdict(set)

    def match(self, dotted: str) -> str | None:
        for name in self.forbidden:
            if dotted == name or dotted.startswith(name + "."):
                return name
        return None

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.asname:
                self.aliases[a.asname] = a.name
            else:
                root = a.name.split(".")[0]
                self.aliases[root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        for a in node.names:
            if a.name == "*":
                self.star_modules.append(node.module)
                continue
            self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"

    def _scoped(self, node) -> None:
        outer = self.current
        if outer == MODULE:
            self.current = node.name
            self.defined.add(node.name)
        self.generic_visit(node)
        self.current = outer

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts = _dotted(node)
        if parts and parts[0] in self.aliases:
            hit = self.match(".".join([self.aliases[parts[0]], *parts[1:]]))
            if hit:
                self.uses[self.current].append(hit)
                return
        elif node.attr in self.methods:
            self.uses[self.current].append(self.methods[node.attr])
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.calls[self.current].add(node.id)
            if node.id in self.aliases:
                hit = self.match(self.aliases[node.id])
                if hit:
                    self.uses[self.current].append(hit)
            elif node.id not in self.defined:
                for module in self.star_modules:
                    hit = self.match(f"{module}.{node.id}")
                    if hit:
                        self.uses[self.current].append(hit)

    def visit_Call(self, node: ast.Call) -> None:
        # getattr(x, "softmax") with a literal name is a method lookup in disguise.
        if (isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant) and node.args[1].value in self.methods):
            self.uses[self.current].append(self.methods[node.args[1].value])
        self.generic_visit(node)


def scan(source: str, forbidden: list[str]) -> dict[str, list[str]]:
    """Map each top-level function (or ``<module>``) to the off-limits names it uses directly."""
    scanner = _Scanner(list(forbidden))
    tree = ast.parse(source)
    # Function names first, so a call before the definition still counts.
    scanner.defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    scanner.visit(tree)
    return {k: v for k, v in scanner.uses.items() if v} | {"__calls__": scanner.calls, "__defined__": scanner.defined}


def tainted(source: str, forbidden: list[str]) -> dict[str, list[str]]:
    """Functions that reach an off-limits name, directly or through other functions of the file.

    A use at module level taints every function. A file that does not parse
    taints nothing: the child reports the syntax error instead.
    """
    if not forbidden:
        return {}
    try:
        found = scan(source, forbidden)
    except SyntaxError:
        return {}
    calls, defined = found.pop("__calls__"), found.pop("__defined__")
    if MODULE in found:
        return {name: list(found[MODULE]) for name in defined}
    result: dict[str, list[str]] = {k: list(v) for k, v in found.items()}
    changed = True
    while changed:
        changed = False
        for fn in defined:
            for callee in calls.get(fn, ()):
                if callee in result and callee != fn:
                    before = len(result.get(fn, []))
                    merged = sorted(set(result.get(fn, [])) | set(result[callee]))
                    if len(merged) != before:
                        result[fn] = merged
                        changed = True
    return result
