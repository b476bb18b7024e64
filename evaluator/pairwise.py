"""Pairwise judgement: which of two answers to the same question is better.

Two judges:

* :class:`OpenAIPairwise` asks the OpenAI judge model with the versioned prompt
  ``prompts/pairwise_v1.json`` (both answers and the reference in one prompt, answers defused like the
  grading prompt's, see :meth:`JudgePrompt.neutralise`), **twice with the order swapped**. An answer wins only
  when both orders agree; otherwise it is a tie. A judge that prefers whatever comes first therefore produces
  ties, never a win for the model that happened to be shown first.
* :class:`ScorePairwise` (the offline judge) compares the two answers' grades: a difference under
  :data:`compare.TIE_MARGIN` points is a tie.

A verdict that is not valid JSON with ``winner`` in A/B/tie is an error, never guessed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openai

from .compare import TIE_MARGIN
from .judge_prompt import PROMPTS_DIR, JudgePrompt, reply_object
from .models import Usage
from .pricing import reply_usage

if TYPE_CHECKING:
    from .judge import OpenAIJudge

logger = logging.getLogger(__name__)

PAIRWISE_PROMPT_FILE = PROMPTS_DIR / "pairwise_v1.json"
WINNERS = ("A", "B", "tie")


@dataclass(frozen=True)
class PairOutcome:
    """The judgement of answer X against answer Y: ``x``, ``y``, ``tie`` or ``error`` (with its reason).

    ``votes`` are the winners of each order asked, in X/Y terms (``("x", "tie")``...).
    """

    outcome: str
    votes: tuple[str, ...] = ()
    reason: str | None = None
    error: str | None = None
    usage: Usage = field(default_factory=Usage)


def parse_verdict(content: str | None) -> tuple[str, str]:
    """``(winner, reason)`` from a pairwise reply; ``ValueError`` says what is wrong with it."""
    data = reply_object(content)
    winner = data.get("winner")
    match = next((w for w in WINNERS if isinstance(winner, str) and winner.strip().lower() == w.lower()), None)
    if match is None:
        raise ValueError(f"winner {winner!r} is not one of A, B, tie")
    reason = data.get("reason")
    return match, reason.strip() if isinstance(reason, str) else ""


class OpenAIPairwise:
    """Pairwise judgement by the OpenAI judge's model, asked in both orders (see the module docstring).

    Args:
        judge: the OpenAI judge whose client, model, temperature and token limit are used.
        prompt: the pairwise prompt (default ``prompts/pairwise_v1.json``).
    """

    backend = "openai"

    def __init__(self, judge: OpenAIJudge, *, prompt: JudgePrompt | None = None) -> None:
        self.judge = judge
        self.model = judge.model
        self.prompt = prompt or JudgePrompt.load(PAIRWISE_PROMPT_FILE)
        self.prompt_version = self.prompt.version
        self.reply_retries = judge.reply_retries

    def messages(self, question: str, reference: str, first: str, second: str) -> list[dict[str, str]]:
        """The chat messages asking which of ``first`` (A) and ``second`` (B) is better."""
        defuse = self.prompt.neutralise
        user = self.prompt.user_template.format(
            question=defuse(question), reference=defuse(reference), answer_a=defuse(first), answer_b=defuse(second)
        )
        return [{"role": "system", "content": self.prompt.system}, {"role": "user", "content": user}]

    def _reply_format(self) -> dict[str, Any]:
        """The reply format the grading judge found the server accepts (strict schema, JSON mode or plain prompt)."""
        fmt = self.judge.reply_format
        if fmt == "json_schema":
            schema = {"name": self.prompt.schema_name, "schema": self.prompt.schema, "strict": True}
            return {"response_format": {"type": "json_schema", "json_schema": schema}}
        if fmt == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {}

    def _ask(self, messages: list[dict[str, str]]) -> tuple[str, str, Usage]:
        """One verdict (winner A/B/tie, reason) and the tokens it cost; raises ``ValueError`` or an API error."""
        usage, problem = Usage(), ""
        for _ in range(1 + self.reply_retries):
            reply = self.judge.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=self.judge.temperature,
                max_tokens=self.judge.max_tokens,
                **self._reply_format(),
            )
            usage += reply_usage(self.model, reply.usage)
            try:
                winner, reason = parse_verdict(reply.choices[0].message.content if reply.choices else None)
                return winner, reason, usage
            except ValueError as exc:
                problem = str(exc)
                logger.warning("Pairwise reply is not a valid verdict (%s); asking again", problem)
        raise ValueError(f"the judge's reply was not a valid verdict: {problem}")

    def judge_pair(self, question: str, reference: str, x: str, y: str, **_scores: Any) -> PairOutcome:
        """X against Y, asked as (A=X, B=Y) and as (A=Y, B=X); X or Y wins only when both orders agree."""
        votes, reasons, usage = [], [], Usage()
        for first, second, as_xy in ((x, y, {"A": "x", "B": "y"}), (y, x, {"A": "y", "B": "x"})):
            try:
                winner, reason, spent = self._ask(self.messages(question, reference, first, second))
            except openai.OpenAIError as exc:
                # The judge's own description of an API failure: never the key, only the host.
                return PairOutcome("error", tuple(votes), error=self.judge.describe_error(exc), usage=usage)
            except ValueError as exc:
                return PairOutcome("error", tuple(votes), error=str(exc), usage=usage)
            usage += spent
            votes.append(as_xy.get(winner, "tie"))
            reasons.append(reason)
        outcome = votes[0] if votes[0] == votes[1] else "tie"
        return PairOutcome(outcome, tuple(votes), reason=" / ".join(r for r in reasons if r) or None, usage=usage)


class ScorePairwise:
    """Pairwise judgement from two grades of the same judge (the offline judge's scores): a margin makes a tie."""

    backend = "offline"

    def __init__(self, *, model: str, prompt_version: str, margin: float = TIE_MARGIN) -> None:
        self.model = model
        self.margin = margin
        self.prompt_version = f"{prompt_version}+scores-margin-{margin:g}"

    def judge_pair(
        self, question: str, reference: str, x: str, y: str, *, score_x: float, score_y: float
    ) -> PairOutcome:
        """X wins when its score is at least ``margin`` above Y's, and the other way round; else a tie."""
        diff = score_x - score_y
        outcome = "tie" if abs(diff) < self.margin else "x" if diff > 0 else "y"
        return PairOutcome(outcome, (outcome,), reason=f"scores {score_x:g} vs {score_y:g}")
