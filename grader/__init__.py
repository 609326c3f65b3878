"""seqlings: the grading engine, the CLI and the hidden graders."""

__version__ = "0.1.0"
