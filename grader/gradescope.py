"""Gradescope: the autograder bundle, its ``run_autograder`` entry point, and ``results.json``.

The bundle (``build``) is a zip with, at its root:

- ``setup.sh``: installs PyTorch (CPU wheels) and the kit on Gradescope's image;
- ``run_autograder``: runs ``python3 -m grader.gradescope`` in the kit;
- ``kit/``: the grader package with the hidden graders of the chosen topics,
  ``topics.toml`` cut down to them, and ``grader/autograder.json`` (topics,
  timeout, visibility of hidden tests). No reference solutions.

``main`` grades every topic's file found in ``/autograder/submission``
(``TOPIC.py``, or ``TOPIC.ipynb`` graded as its solution cells; directly or
one folder down) and writes ``/autograder/results/results.json``. The root
``/autograder`` can be moved with ``SEQLINGS_AUTOGRADER_ROOT`` (tests use a
temporary folder). Whatever happens, a results.json is written.

``results_json`` follows Gradescope's documented schema: top-level ``score``,
``execution_time``, ``output``, ``visibility``, ``stdout_visibility`` and
``tests``, each test with ``name``, ``number``, ``score``, ``max_score``,
``status``, ``output``, ``tags`` and ``visibility``. Public tests are
``visible``; hidden tests get the bundle's ``hidden_visibility``
(``after_published`` by default: names and messages show once grades are
published; ``hidden`` never shows them, ``after_due_date`` after the deadline).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from functools import lru_cache
from pathlib import Path

from grader import course

ROOT_ENV = "SEQLINGS_AUTOGRADER_ROOT"
CONFIG = "autograder.json"
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update
    apt-get install -y python3 python3-pip python3-venv
fi
# CPU wheels: the CUDA build is several GB and Gradescope has no GPU.
python3 -m pip install --upgrade pip
python3 -m pip install 'torch>=2.4,<3' --index-url https://download.pytorch.org/whl/cpu
python3 -m pip install /autograder/source/kit
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: it grades /autograder/submission and writes
# /autograder/results/results.json. SEQLINGS_AUTOGRADER_ROOT moves /autograder (for tests);
# SEQLINGS_PYTHON picks the interpreter.
ROOT="${SEQLINGS_AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source/kit" || exit 1
exec "${SEQLINGS_PYTHON:-python3}" -m grader.gradescope "$ROOT"
"""

KIT_README = """\
# seqlings autograder kit

Made by `seqlings gradescope`; Gradescope unpacks it in /autograder/source.
`run_autograder` grades the files in /autograder/submission with the hidden
graders of: {topics}. Settings: grader/autograder.json.
"""


# -- results.json ----------------------------------------------------------------------

@lru_cache(maxsize=None)
def public_tests(topic: str) -> frozenset[str]:
    """Names (without ``test_``) of the public tests of ``topic``."""
    from grader import release

    path = course.topic(topic).grader
    names = release.split_tests(path.read_text())[0] if path.exists() else set()
    return frozenset(n.removeprefix("test_") for n in names)


def is_public(test_id: str) -> bool:
    topic, _, rest = test_id.partition("::")
    try:
        return rest.split("[")[0] in public_tests(topic)
    except course.UnknownTopic:
        return False


def results_json(rows: list[dict], hidden_visibility: str = "after_published",
                 execution_time: float | None = None) -> dict:
    """One student's rows (as ``batch`` makes them, one per topic) in Gradescope's results.json schema."""
    if hidden_visibility not in VISIBILITIES:
        raise ValueError(f"hidden_visibility must be one of {', '.join(VISIBILITIES)}")
    tests, lines = [], []
    for i, row in enumerate(rows, 1):
        topic = row["topic"]
        if not row["tests"]:
            why = row.get("message") or "not graded"
            if "grader-error" in row["flags"]:
                why = f"the autograder could not grade {topic}; tell your instructor ({why})"
            tests.append({"name": f"{topic}: submission", "number": f"{i}", "score": 0.0,
                          "max_score": row["max_score"], "status": "failed", "output": why,
                          "tags": [topic], "visibility": "visible"})
            lines.append(f"{topic}: 0/{row['max_score']:g} ({why})")
            continue
        for j, t in enumerate(row["tests"], 1):
            output = "" if t["outcome"] == "passed" else f"{t['outcome']}: {t['message']}"
            tests.append({"name": t["id"], "number": f"{i}.{j}", "score": t["points"],
                          "max_score": t["max_points"], "status": "passed" if t["outcome"] == "passed" else "failed",
                          "output": output, "tags": [topic],
                          "visibility": "visible" if is_public(t["id"]) else hidden_visibility})
        public = [t for t in row["tests"] if is_public(t["id"])]
        lines.append(f"{topic}: public tests {sum(t['points'] for t in public):g}/"
                     f"{sum(t['max_points'] for t in public):g}"
                     + (f"; flagged: {', '.join(row['flags'])}" if row["flags"] else ""))
    data = {
        "score": round(sum(t["score"] for t in tests), 6),
        "output": "\n".join(lines) + "\nHidden tests count toward your score; their results show "
                  + {"hidden": "never.", "after_due_date": "after the due date.",
                     "after_published": "once grades are published.", "visible": "now."}[hidden_visibility],
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }
    if execution_time is not None:
        data["execution_time"] = int(round(execution_time))
    return data


# -- the bundle ----------------------------------------------------------------------

def build(out: Path, chosen: list[course.Topic], timeout: float = 120.0,
          hidden_visibility: str = "after_published") -> list[str]:
    """Write the autograder zip for ``chosen`` to ``out``; return the names inside it."""
    from grader import release

    if hidden_visibility not in VISIBILITIES:
        raise release.ReleaseError(f"hidden visibility must be one of {', '.join(VISIBILITIES)}")
    missing = [t.name for t in chosen if not t.grader.exists()]
    if missing:
        raise release.ReleaseError(f"no grader for {', '.join(missing)}: leave it out with --topics")
    with tempfile.TemporaryDirectory(prefix="seqlings-gradescope-") as tmp:
        kit = Path(tmp) / "kit"
        release._copy_package(kit, chosen)
        for t in chosen:
            shutil.copyfile(t.grader, kit / "grader" / "checks" / t.grader.name)
        config = {"kind": "gradescope", "topics": [t.name for t in chosen], "timeout": timeout,
                  "hidden_visibility": hidden_visibility}
        (kit / "grader" / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        (kit / "pyproject.toml").write_text(release._pyproject([CONFIG]))
        (kit / "README.md").write_text(KIT_README.format(topics=", ".join(config["topics"])))
        problems = release.audit(kit, hidden_ok=True)
        if problems:
            raise release.ReleaseError("the autograder would hold reference code: " + "; ".join(problems[:5]))
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_zip = out.with_name(f".{out.name}.tmp")
        names = []
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, text in (("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)):
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.external_attr = 0o100755 << 16  # executable: Gradescope runs both directly
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, text)
                names.append(name)
            for path in sorted(p for p in kit.rglob("*") if p.is_file()):
                name = "kit/" + path.relative_to(kit).as_posix()
                zf.write(path, name)
                names.append(name)
        tmp_zip.replace(out)
    return names


# -- run_autograder ------------------------------------------------------------------

def load_config() -> dict:
    path = course.kit_root() / "grader" / CONFIG
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"topics": course.names(), "timeout": 120.0, "hidden_visibility": "after_published"}


def grade_submission(submission: Path, config: dict) -> dict:
    """Grade one Gradescope submission folder; the results.json content."""
    from grader import batch

    from grader.cli_common import draw_seed

    start = time.monotonic()
    # Inputs drawn per run, so no lookup table of a learner's fixed-seed inputs scores here.
    seed = int(config.get("seed") or draw_seed())
    settings = batch.Settings(device="cpu", timeout=float(config.get("timeout", 120.0)), seed=seed)
    topics = [t for t in config.get("topics", course.names()) if t in course.names()]
    try:
        files = batch.find_files(submission, topics)
    except batch.BatchError:
        files = {}
    for t in topics:
        if t not in files:  # deeper, or in several folders: the shallowest first match
            hits = sorted(submission.rglob(f"{t}.py"), key=lambda p: (len(p.parts), str(p))) or \
                sorted(submission.rglob(f"{t}.ipynb"), key=lambda p: (len(p.parts), str(p)))
            hits = [h for h in hits if not set(h.parts) & batch.SKIP_DIRS]
            if hits:
                files[t] = (hits[0], None)
    rows = []
    with tempfile.TemporaryDirectory(prefix="seqlings-autograder-") as scratch:
        for t in topics:
            path = files.get(t, (None, None))[0]
            job = batch.Job("submission", t, path)
            if path is None:
                row = batch.missing_row(job, settings)
                row["message"] = (f"no {t}.py (or {t}.ipynb) in your submission: upload your "
                                  f"exercises/{t}.py under that name")
            else:
                row = batch.grade_job(job, batch.source_of(path), settings, scratch)
            rows.append(row)
    data = results_json(rows, config.get("hidden_visibility", "after_published"),
                        execution_time=time.monotonic() - start)
    data["output"] += f"\nTest inputs were drawn with seed {seed}."
    return data


def main(argv: list[str] | None = None) -> int:
    """``run_autograder``: grade ROOT/submission, write ROOT/results/results.json; always writes one."""
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else os.environ.get(ROOT_ENV) or "/autograder")
    target = root / "results" / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = grade_submission(root / "submission", load_config())
    except Exception:  # noqa: BLE001 - Gradescope must get a results.json whatever broke
        traceback.print_exc()
        data = {"score": 0.0, "output": "The autograder failed before it could grade your submission; "
                                        "tell your instructor.", "visibility": "visible",
                "stdout_visibility": "hidden", "tests": []}
    target.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {target}: {data['score']:g} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
