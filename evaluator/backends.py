"""The judge interface every backend implements, and the factory that picks one from settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .models import GradeRequest, JudgeResult

if TYPE_CHECKING:
    from .config import Settings


@runtime_checkable
class Judge(Protocol):
    """A grader: ``backend`` is ``openai`` or ``offline``; results never raise for a bad reply.

    ``grades_in_chunks``: the judge grades many answers at once on this machine (``grade_many`` over a chunk
    is faster than one call per answer), so a batch hands it chunks instead of concurrent single calls.
    """

    backend: str
    grades_in_chunks: bool
    model: str
    prompt_version: str

    def grade(self, request: GradeRequest) -> JudgeResult:
        """Grade one answer (blocking)."""
        ...

    async def agrade(self, request: GradeRequest) -> JudgeResult:
        """Grade one answer without blocking the event loop."""
        ...

    def grade_many(self, requests: Sequence[GradeRequest]) -> list[JudgeResult]:
        """Grade many answers, in order; backends batch where they can."""
        ...


def build_judge(settings: Settings) -> Judge:
    """The judge that ``settings`` ask for: OpenAI when a key is set (or forced), else offline."""
    if settings.effective_judge_backend == "openai":
        from .judge import OpenAIJudge

        return OpenAIJudge.from_settings(settings)
    from .offline_judge import OfflineJudge

    return OfflineJudge()
