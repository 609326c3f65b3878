"""Performance benchmarks of seqlings (issue 9): run on demand, never part of the test suite.

    python -m benchmarks [--quick] [--only GROUP ...]

Groups, each in its own module: ``references`` and ``scaling`` (refs.py,
scaling.py), ``memory`` (memory.py), ``cli`` (startup.py), ``grader``
(grading.py, with inprocess.py and inprocess_plugin.py for its baseline) and
``batch`` (batching.py). Every figure is a ratio against a
baseline measured in the same run, the median of several repeats; results go
to benchmarks/results/GROUP.json and benchmarks/results/SUMMARY.md.
"""
