"""A pytest plugin that grades in the grader's own process: ``-p grader.plugin -p benchmarks.inprocess_plugin``.

It swaps ``grader.plugin.Submission`` (the class the ``impl`` fixture builds)
for ``benchmarks.inprocess.InProcess`` before any test runs, so the same
grader files run unchanged, without the sandbox. For the `grader` benchmark
only; see benchmarks/grading.py.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import grader.plugin

    from benchmarks.inprocess import InProcess

    grader.plugin.Submission = InProcess
