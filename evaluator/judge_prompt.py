"""The versioned judge prompt and the strict parser of its replies.

The prompt is data (``evaluator/prompts/judge_v1.json``): system text with the rubric, a user template
that delimits the question, reference and answer, and the reply's JSON schema. The answer under test
is neutralised so that it is graded as content, never obeyed. :func:`parse_grade` accepts a reply only
when it is a complete, in-range grade: nothing is clamped or guessed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError
from .models import CRITERIA, VERDICTS, Grade, GradeRequest
from .textsafety import check_text, defuse_markup

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
DEFAULT_PROMPT_FILE = PROMPTS_DIR / "judge_v1.json"
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class JudgePrompt:
    """A versioned judge prompt: system text (with the rubric), user template, reply JSON schema."""

    version: str
    system: str
    user_template: str
    schema_name: str
    schema: dict[str, Any]
    delimiters: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path = DEFAULT_PROMPT_FILE) -> JudgePrompt:
        """Read a prompt file; text fields are lists of lines, ``{rubric}`` in the system text is filled in."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            version=data["version"],
            system="\n".join(data["system"]).replace("{rubric}", "\n".join(data["rubric"])),
            user_template="\n".join(data["user_template"]),
            schema_name=data["schema_name"],
            schema=data["schema"],
            delimiters=tuple(data["delimiters"]),
        )

    def neutralise(self, text: str) -> str:
        """``text`` with anything that reads as one of our delimiters or as chat markup defused (see textsafety)."""
        return defuse_markup(text, self.delimiters)

    def messages(self, request: GradeRequest) -> list[dict[str, str]]:
        """The chat messages that ask for a grade of ``request``; its texts are delimited data."""
        user = self.user_template.format(
            question=self.neutralise(request.question),
            reference=self.neutralise(request.reference),
            answer=self.neutralise(request.answer),
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def reply_object(content: str | None) -> dict[str, Any]:
    """The JSON object in a judge reply (code fences allowed); ``ValueError`` says what is wrong with it."""
    text = (content or "").strip()
    if not text:
        raise ValueError("empty reply")
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"reply is not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("reply is not a JSON object")
    return data


def parse_grade(content: str | None) -> Grade:
    """The grade in a judge reply; ``ValueError`` says what is wrong with it (nothing is clamped or guessed)."""
    data = reply_object(content)
    missing = [k for k in ("score", "verdict", "criteria", "feedback", "missed_points") if k not in data]
    if missing:
        raise ValueError(f"reply lacks {', '.join(missing)}")
    score = data["score"]
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise ValueError(f"score is not a number: {score!r}")
    if not 0 <= score <= 10:
        raise ValueError(f"score {score} is outside 0-10")
    verdict = data["verdict"].strip().lower() if isinstance(data["verdict"], str) else data["verdict"]
    if verdict not in VERDICTS:
        raise ValueError(f"verdict {data['verdict']!r} is not one of {', '.join(VERDICTS)}")
    criteria = data["criteria"]
    if not isinstance(criteria, dict):
        raise ValueError("criteria is not an object")
    levels: dict[str, int] = {}
    for name in CRITERIA:
        value = criteria.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ValueError(f"criterion {name} is not a whole number: {value!r}")
        if not 1 <= value <= 5:
            raise ValueError(f"criterion {name} = {value} is outside 1-5")
        levels[name] = int(value)
    feedback = data["feedback"]
    if not isinstance(feedback, str) or not feedback.strip():
        raise ValueError("feedback is empty")
    missed = data["missed_points"]
    if not isinstance(missed, list) or not all(isinstance(p, str) for p in missed):
        raise ValueError("missed_points is not a list of strings")
    try:
        for text in (feedback, *missed):
            check_text(text, "judge's feedback")
    except InputError as exc:  # it could never be logged
        raise ValueError(str(exc)) from None
    return Grade(
        score=float(score),
        verdict=verdict,
        criteria=levels,
        feedback=feedback.strip(),
        missed_points=[p.strip() for p in missed if p.strip()],
    )


def completion_grade(body: Any, *, max_tokens: int | None = None) -> Grade:
    """The grade in a chat-completion response body (parsed JSON); ``ValueError`` says what is wrong with it."""
    if not isinstance(body, dict):
        raise ValueError("reply is not a chat completion")
    choices = body.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ValueError("reply has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    if message.get("refusal"):
        raise ValueError(f"the judge refused: {str(message['refusal'])[:200]}")
    content = message.get("content")
    try:
        return parse_grade(content if isinstance(content, str) else None)
    except ValueError:
        if choice.get("finish_reason") == "length":
            limit = f"{max_tokens} tokens" if max_tokens else "the token limit"
            raise ValueError(f"reply cut off at {limit} (raise MASTER_MAX_NEW_TOKENS)") from None
        raise
