"""LLM Evaluator Chatbot: grade answers with a judge LLM (or offline), log everything, read feedback."""

from .config import Settings, load_settings
from .dataset import Dataset, QAItem, load_dataset
from .errors import (
    ConfigError,
    DatasetError,
    EvaluatorError,
    InputError,
    JudgeError,
    LogError,
    NotFoundError,
    RateLimitedError,
)
from .models import EvaluationRecord, FeedbackRecord, Grade, GradeRequest, JudgeResult, Sentiment, Usage
from .service import Evaluator

__all__ = [
    "ConfigError",
    "Dataset",
    "DatasetError",
    "EvaluationRecord",
    "Evaluator",
    "EvaluatorError",
    "FeedbackRecord",
    "Grade",
    "GradeRequest",
    "InputError",
    "JudgeError",
    "JudgeResult",
    "LogError",
    "NotFoundError",
    "QAItem",
    "RateLimitedError",
    "Sentiment",
    "Settings",
    "Usage",
    "load_dataset",
    "load_settings",
]
__version__ = "0.1.0"
