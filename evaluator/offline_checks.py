"""Targeted evidence against an answer that similarity alone would grade well; each finding caps the grade.

Similarity cannot tell "X is Y" from "X is not Y", so the offline judge looks for specific signs and,
where one is found, caps its score and says why (:class:`Finding`):

* **contradiction** — an answer clause that repeats a reference clause (most of its content words) with the
  opposite polarity: a negation the other side lacks (``not``, ``never``, ``-n't``, ``un-``/``in-``/``non-``
  forms of the other side's word), an antonym (higher/lower, positive/negative...) or the two sides of a
  comparison swapped ("A lower than B" vs "B lower than A"); an even number of such flips cancels out;
* **swapped roles** — a clause about one term of the question described with the words the reference uses for
  another term of the question (mean described as the median...);
* **misconception** — a clause that states, with the same polarity, one of the known misconceptions attached to
  the question in ``data/misconceptions.json``;
* **keyword list** — words without sentence structure (almost no function words);
* **not English** — the offline judge's models read English only: such an answer is not graded.

Only lexical evidence is used (stems from :mod:`evaluator.text`), so each finding can quote the clauses it saw.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .text import STOPWORDS
from .text import stem as _light_stem

MISCONCEPTIONS_PATH = Path(__file__).resolve().parent.parent / "data" / "misconceptions.json"
# Caps on the score 0-10 for each kind of finding (below 7: never "correct").
CAPS = {"unrelated": 2.0, "misconception": 2.0, "contradiction": 3.0, "swapped roles": 3.0, "keyword list": 4.0}


def stem(word: str) -> str:
    """The light stem of :mod:`evaluator.text` without a final "e", so generate/generates/generated agree."""
    return _light_stem(word).rstrip("e") or word


_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_CLAUSE_END = re.compile(
    r"(?<=[.!?;:])\s+|\n+|,\s+(?=(?:while|whereas|but|because|so|although|which|and)\b)"
    r"|\s+(?=(?:while|whereas|because|since|so that)\b)"
    r"|\s+and\s+(?=(?:does|do|did|is|are|was|were|can|cannot|could|will|has|have|it|they)\b)"
)
# A clause that opens with a condition ("Without X, Y"; "If X, Y"): the condition and Y are read apart.
_CONDITION = re.compile(r"^((?:without|if|when|unless|once|given)\b[^,]{0,80}),\s+(.+)$", re.IGNORECASE | re.DOTALL)
NEGATIONS = frozenset(
    """not no never none nothing neither nor cannot without nobody nowhere hardly barely rarely seldom scarcely
    little""".split()  # noqa: SIM905
)
# Words that flip the polarity of a clause against each other: each group's opposite is the other group.
_ANTONYMS = [
    (
        "increase increases increased increasing raise raises raised rise rises higher highest more larger largest "
        "bigger greater above maximize maximise maximizes maximises maximum overestimate overestimates grow grows "
        "high large many add adds",
        "decrease decreases decreased decreasing reduce reduces reduced lower lowest less fewer smaller smallest "
        "below minimize minimise minimizes minimises minimum underestimate underestimates shrink shrinks low small "
        "few remove removes",
    ),
    ("positive positives", "negative negatives"),
    ("true", "false"),
    ("overfitting overfit overfits overfitted", "underfitting underfit underfits underfitted"),
    ("before", "after"),
    ("fast faster fastest quick quicker", "slow slower slowest"),
    ("simple simpler simplest", "complex complicated"),
    ("always", "never"),
    ("same identical", "different"),
    ("sequential sequentially", "parallel"),
    ("row rows", "column columns"),
    ("first", "last"),
]
_OPPOSITE: dict[str, tuple[int, int]] = {}
for _group, (_a, _b) in enumerate(_ANTONYMS):
    for _side, _words in enumerate((_a, _b)):
        for _w in _words.split():
            _OPPOSITE[stem(_w)] = (_group, _side)
_CONTRACTED = frozenset("is are was were do does did has have had can could would should wo ca must need".split())  # noqa: SIM905
_PREFIXES = ("non", "un", "in", "im", "ir", "il", "dis")
# Function words of other languages that English does not use (for the not-English check).
_FOREIGN = frozenset(
    """le la les des est une et du dans pour que qui sont pas avec sur au aux ce cette elle ils nous vous leur
    el los las es una y del por para con lo se al muy pero su sus también como
    der die das und ist nicht ein eine zu den mit von sich auf für im dem wird werden oder auch
    il gli della di che è per sono delle degli nel alla questo
    os um uma não com são do da dos das ou mais""".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Finding:
    """One sign against the answer: its kind, the score cap it sets, and a sentence saying what was seen."""

    kind: str
    message: str

    @property
    def cap(self) -> float:
        """The highest score this finding allows."""
        return CAPS[self.kind]


def words(text: str) -> list[str]:
    """Lowercased word tokens (letters of any script, digits; ``isn't`` stays one word)."""
    return [w.lower().replace("\u2019", "'") for w in _TOKEN.findall(text.replace("\u2019", "'"))]


_ASIDE = re.compile(r"\([^()]*\)|\bno matter\b|\bnot only\b|\bnot just\b", re.IGNORECASE)


def clauses(text: str) -> list[str]:
    """Sentences and clauses (split before while/whereas/but/because... after a comma), without asides in
    parentheses and idioms whose "no"/"not" negates nothing ("no matter", "not only")."""
    out = []
    for clause in _CLAUSE_END.split(_ASIDE.sub(" ", text)):
        clause = (clause or "").strip()
        condition = _CONDITION.match(clause)
        out += [condition[1], condition[2]] if condition else [clause] if clause else []
    return out


@dataclass(frozen=True)
class _Clause:
    text: str
    stems: list[str]  # content stems in order (antonym words included)
    scopes: list[set[str]]  # per negation: the content stems it governs (the next few), for the polarity check

    @property
    def content(self) -> set[str]:
        """Content stems without the polarity words, for alignment."""
        return {s for s in self.stems if s not in _OPPOSITE}

    def negations(self, other: _Clause) -> int:
        """Negations whose scope is about what ``other`` says too (a negation elsewhere in a long clause is not)."""
        return sum(1 for scope in self.scopes if not scope or scope & other.content)


SCOPE = 3  # content words after a negation that it governs


def _clause(text: str, other: set[str] | None = None) -> _Clause:
    """``text`` as stems; a prefixed word (un-, in-, non-...) whose stem is in ``other`` counts as that stem plus a
    negation (immutable vs mutable), and so does "non X" ("non-linear" vs "linear")."""
    stems: list[str] = []
    starts: list[int] = []  # index in stems where each negation's scope begins
    last_negation = -9
    tokens = words(text)
    for i, w in enumerate(tokens):
        if w in NEGATIONS or w.endswith("n't") or (w.endswith("nt") and w[:-2] in _CONTRACTED):
            if i - last_negation > 2:  # "little or no" is one negation
                starts.append(len(stems))
            last_negation = i
            continue
        if w in STOPWORDS or len(w) < 2:
            continue
        if w == "non":
            if other is not None and i + 1 < len(tokens) and stem(tokens[i + 1]) in other and i - last_negation > 2:
                starts.append(len(stems))
                last_negation = i
            continue
        s = stem(w)
        if other is not None and s not in other:
            for prefix in _PREFIXES:
                rest = stem(w[len(prefix) :])
                if w.startswith(prefix) and len(rest) >= 4 and rest in other:
                    s = rest
                    starts.append(len(stems))
                    break
        stems.append(s)
    return _Clause(text, stems, [set(stems[start : start + SCOPE]) for start in starts])


def _aligned(a: _Clause, r: _Clause) -> float:
    """How much clause ``a`` restates clause ``r`` (0-1): the share of their content stems they share."""
    ac, rc = a.content, r.content
    shared = len(ac & rc)
    if shared < 3:
        return 0.0
    return min(shared / len(ac), shared / max(1, len(rc)) * 1.5, 1.0)


def _antonym_flips(a: _Clause, r: _Clause) -> int:
    """1 when ``a`` uses the opposite of a polarity word of ``r`` (and not that word itself)."""
    a_sides = {_OPPOSITE[s] for s in a.stems if s in _OPPOSITE}
    r_sides = {_OPPOSITE[s] for s in r.stems if s in _OPPOSITE}
    flips = 0
    for group, side in r_sides:
        if (group, 1 - side) in r_sides:
            continue  # the reference uses both sides: no polarity to compare
        if (group, 1 - side) in a_sides and (group, side) not in a_sides:
            flips += 1
    return flips


def _comparison_swapped(a: str, r: str) -> bool:
    """Whether the two sides of a "than" comparison are swapped between the clauses."""
    a_parts, r_parts = re.split(r"\bthan\b", a.lower(), maxsplit=1), re.split(r"\bthan\b", r.lower(), maxsplit=1)
    if len(a_parts) < 2 or len(r_parts) < 2:
        return False
    a_before, a_after = ({stem(w) for w in words(p) if w not in STOPWORDS} for p in a_parts)
    r_before, r_after = ({stem(w) for w in words(p) if w not in STOPWORDS} for p in r_parts)
    return bool((a_before & r_after) - r_before) and bool((a_after & r_before) - r_after)


def _flips(a: _Clause, r: _Clause) -> int:
    """Polarity flips between two aligned clauses (odd: they disagree); clauses with 2+ negations are not read."""
    a_negations, r_negations = a.negations(r), r.negations(a)
    if a_negations > 1 or r_negations > 1:
        return 0
    return abs(a_negations - r_negations) % 2 + _antonym_flips(a, r) + _comparison_swapped(a.text, r.text)


ALIGNED = 0.7  # a clause restates another when _aligned reaches this


def contradictions(answer: str, reference: str) -> list[Finding]:
    """Answer clauses that restate a reference clause with the opposite polarity."""
    ref_stems = {stem(w) for w in words(reference)}
    ans_stems = {stem(w) for w in words(answer)}
    refs = [_clause(c, ans_stems) for c in clauses(reference)]
    found = []
    for text in clauses(answer):
        a = _clause(text, ref_stems)
        best = max(refs, key=lambda r: _aligned(a, r), default=None)
        if best is None or _aligned(a, best) < ALIGNED:
            continue
        if _flips(a, best) % 2:
            found.append(
                Finding("contradiction", f'"{_short(text)}" says the opposite of the reference: "{_short(best.text)}"')
            )
    return found


def misconceptions(question: str, answer: str) -> list[Finding]:
    """Answer clauses that state a known misconception about ``question`` (same polarity, same terms of the
    question: "the median is the middle value" does not state "the mean is the middle value")."""
    statements = known_misconceptions().get(_normalise(question), [])
    if not statements:
        return []
    question_stems = {stem(w) for w in words(question)}
    ans_stems = {stem(w) for w in words(answer)}
    found = []
    for text in clauses(answer):
        for statement in statements:
            a = _clause(text, {stem(w) for w in words(statement)})
            m = _clause(statement, ans_stems)
            if (
                _aligned(a, m) >= ALIGNED
                and _flips(a, m) % 2 == 0
                and a.content & question_stems >= m.content & question_stems
            ):
                found.append(Finding("misconception", f'"{_short(text)}" states a known misconception: {statement}'))
                break
    return found


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+|,?\s+(?=(?:while|whereas)\b)")


def swapped_roles(question: str, reference: str, answer: str) -> list[Finding]:
    """Answer sentences about one term of the question described in the reference's words for another term.

    The terms are the question's content words that some reference sentences mention and others do not
    ("mean", "median"; not "learning" when every sentence says it).
    """
    question_stems = {stem(w) for w in words(question) if w not in STOPWORDS}

    def split(text: str) -> list[tuple[set[str], set[str], str]]:
        out = []
        for sentence in _SENTENCE_END.split(_ASIDE.sub(" ", text)):
            stems = {stem(w) for w in words(sentence) if w not in STOPWORDS and w not in NEGATIONS}
            if stems:
                out.append((stems & question_stems, stems - question_stems, sentence.strip()))
        return out

    reference_sentences = split(reference)
    mentioned = [terms for terms, _, _ in reference_sentences if terms]
    everywhere = set.intersection(*mentioned) if mentioned else set()
    described: dict[str, set[str]] = {}
    for terms, rest, _ in reference_sentences:
        if len(terms - everywhere) == 1:
            described.setdefault(next(iter(terms - everywhere)), set()).update(rest)
    if len(described) < 2:
        return []
    found = []
    for terms, rest, text in split(answer):
        terms -= everywhere
        if len(terms) != 1 or next(iter(terms)) not in described:
            continue
        term = next(iter(terms))
        own = described[term]
        for other, theirs in described.items():
            if other == term:
                continue
            borrowed, kept = rest & (theirs - own), rest & (own - theirs)
            if len(borrowed) >= 2 and not kept:
                found.append(
                    Finding(
                        "swapped roles",
                        f'"{_short(text)}" describes "{term}" with what the reference says of "{other}"',
                    )
                )
                break
    return found


def keyword_list(answer: str) -> list[Finding]:
    """A finding when the answer is a list of words with (almost) no sentence structure."""
    ws = words(answer)
    if len(ws) < 4:
        return []
    function = sum(w in STOPWORDS or w in NEGATIONS for w in ws)
    if function / len(ws) < 0.12:
        return [
            Finding(
                "keyword list",
                "The answer lists terms without sentences saying how they relate",
            )
        ]
    return []


def not_english(answer: str) -> bool:
    """Whether the answer is, by its words, clearly not English (another script, or another language's words)."""
    letters = [c for c in answer if c.isalpha()]
    if len(letters) >= 8 and sum(not c.isascii() for c in letters) / len(letters) > 0.3:
        return True
    ws = [w for w in words(answer) if not w.isdigit()]
    if len(ws) < 4:
        return False
    english = sum(w in STOPWORDS or w in NEGATIONS for w in ws) / len(ws)
    foreign = sum(w in _FOREIGN for w in ws) / len(ws)
    return foreign >= 0.15 and foreign > english


def findings(question: str, reference: str, answer: str) -> list[Finding]:
    """Every finding against ``answer``, the strongest cap first."""
    out = [
        *misconceptions(question, answer),
        *contradictions(answer, reference),
        *swapped_roles(question, reference, answer),
        *keyword_list(answer),
    ]
    return sorted(out, key=lambda f: f.cap)


def _normalise(question: str) -> str:
    return " ".join(words(question))


@lru_cache(maxsize=1)
def known_misconceptions(path: Path = MISCONCEPTIONS_PATH) -> dict[str, list[str]]:
    """Misconception statements by normalised question text (none when the file is missing)."""
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {_normalise(entry["question"]): list(entry["misconceptions"]) for entry in data}


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
