"""Stubs are the reference with holes, made from it rather than kept by hand.

``make_stub`` keeps the reference's module docstring, imports, signatures and
docstrings, drops its private helpers, and replaces each body with the
topic's TODO sentence and ``raise NotImplementedError``. ``exercises/`` holds
the result; ``tests/test_course.py`` fails when the two drift apart.
"""

from __future__ import annotations

import ast
import textwrap

from grader.course import Topic

HEADER = "# Exercise stub: fill in each function, then run `seqlings check {name}`.\n"


def make_stub(topic: Topic, reference_source: str) -> str:
    tree = ast.parse(reference_source)
    lines = reference_source.splitlines(keepends=True)
    keep_whole = set(topic.todo.get("_given", []))
    out: list[str] = []
    cursor = 0  # next line (0-based) of the reference not yet handled
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        start = min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1
        out.extend(lines[cursor:start])
        cursor = node.end_lineno
        if node.name in keep_whole:
            out.extend(lines[start:cursor])
        elif node.name in topic.functions:
            body_start = node.body[0]
            has_doc = isinstance(body_start, ast.Expr) and isinstance(body_start.value, ast.Constant) \
                and isinstance(body_start.value.value, str)
            head_end = body_start.end_lineno if has_doc else body_start.lineno - 1
            out.extend(lines[start:head_end])
            indent = " " * body_start.col_offset
            sentence, _, shapes = topic.todo.get(node.name, "implement this function.").partition(" | ")
            todo = textwrap.wrap(sentence, width=88 - len(indent) - 2,
                                 initial_indent="TODO: ", subsequent_indent="      ")
            if shapes:
                todo.append(f"Shapes: {shapes}")
            out.extend(f"{indent}# {line}\n" for line in todo)
            out.append(f"{indent}raise NotImplementedError\n")
        else:
            # A private helper of the solution: the learner writes their own.
            while out and out[-1].strip() == "" and len(out) > 2 and out[-2].strip() == "":
                out.pop()
    out.extend(lines[cursor:])
    text = "".join(out)
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return HEADER.format(name=topic.name) + text


def write_all(check: bool = False) -> list[str]:
    """Regenerate exercises/TOPIC.py for every topic from its reference; return the names that changed."""
    from grader import course

    changed = []
    for topic in course.topics():
        if not topic.reference.exists():
            continue  # a topic still being written; tests/test_course.py reports it
        stub = make_stub(topic, topic.reference.read_text())
        target = course.kit_root() / "exercises" / f"{topic.name}.py"
        if not target.exists() or target.read_text() != stub:
            changed.append(topic.name)
            if not check:
                target.parent.mkdir(exist_ok=True)
                target.write_text(stub)
    return changed


if __name__ == "__main__":  # python -m grader.stubs: rewrite the stubs after editing a reference or a todo
    print("rewrote:", ", ".join(write_all()) or "nothing")
