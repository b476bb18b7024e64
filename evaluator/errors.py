"""The evaluator's exception hierarchy: vendor errors are wrapped at the boundary into these."""


class EvaluatorError(Exception):
    """Base class of every error the evaluator raises on purpose; its message is for humans."""


class ConfigError(EvaluatorError):
    """A setting is missing or has a bad value; the message names the variable."""


class InputError(EvaluatorError):
    """User input is invalid (empty or oversized answer, bad rating, unknown id...)."""


class NotFoundError(InputError):
    """A question id or evaluation id does not exist."""


class DatasetError(EvaluatorError):
    """A Q&A dataset file cannot be read or does not validate; the message says where."""


class JudgeError(EvaluatorError):
    """The judge could not produce a grade (unreachable, refused, unparseable reply)."""


class CandidateError(EvaluatorError):
    """The candidate model could not answer a question (unreachable, refused, not installed)."""


class StoppedError(EvaluatorError):
    """A batch was stopped before it finished (its client went away); what it graded is logged and resumable."""


class LogError(EvaluatorError):
    """The evaluation log cannot be written or read."""


class RateLimitedError(EvaluatorError):
    """A client made too many requests; ``retry_after`` says how many seconds to wait."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
