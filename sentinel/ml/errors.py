"""One exception hierarchy for the ML layer; messages name the thing and the fix."""

from __future__ import annotations

from sentinel.errors import SentinelError


class MLError(SentinelError):
    """Base of every error raised by :mod:`sentinel.ml`; a :class:`SentinelError` like the rest."""


class ModelError(MLError, ValueError):
    """Input that a model cannot learn from or score (NaN/inf, too few rows, constant labels)."""


class NotFittedError(ModelError):
    """``predict`` called on a model that has not been fitted."""

    def __init__(self, model: object) -> None:
        super().__init__(
            f"{type(model).__name__} is not fitted yet: call fit(X, y) before predict(X)"
        )


def load_problem(message: str) -> str:
    """A load error without its folder path (short enough for a fallback column)."""
    head = "cannot load model from "
    if message.startswith(head) and ": " in message[len(head) :]:
        return message[len(head) :].split(": ", 1)[1]
    return message


class ModelLoadError(MLError):
    """A model folder that cannot be trusted: missing, corrupt, extra or mismatched files."""

    def __init__(self, folder: object, problem: str) -> None:
        self.folder = str(folder)
        self.problem = problem
        super().__init__(f"cannot load model from {self.folder}: {problem}")
