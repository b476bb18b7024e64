"""Targeted evidence against an answer that similarity alone would grade well; each finding caps the grade.

Similarity cannot tell "X is Y" from "X is not Y", so the offline judge looks for specific signs and,
where one is found, caps its score and says why (:class:`Finding`):

* **contradiction** — an answer clause (or two neighbouring ones) that repeats a reference clause (most of its
  content words) with the opposite polarity: a negation the other side lacks (``not``, ``never``, ``-n't``,
  ``rather than``, ``un-``/``in-``/``non-`` forms of the other side's word), a word replaced by its opposite
  (higher/lower, positive/negative...) or the two sides of a comparison swapped ("A lower than B" vs "B lower
  than A"); a negation of the opposite word, "reduces X" for "X does not happen" and a contrapositive agree;
* **denial** — an answer clause about a point of the reference, too reworded to read as a restatement, that
  denies something the reference states without negating it: a sign the judge cannot resolve, so it caps the
  verdict at "partially correct" (and says so only when that lowers the score);
* **swapped roles** — two terms exchanged in the reference's own words ("MAE averages the squared errors, MSE
  the absolute errors"), or words moved between two restated points of the reference, both ways, or two terms
  that, put back in each other's place, make an answer in the reference's wording match more of it;
* **misconception** — a clause that states, with the same polarity, one of the known misconceptions attached to
  the question in ``data/misconceptions.json``;
* **keyword list** — terms without sentences (almost no function words, or items with no article, auxiliary or
  pronoun);
* **not English** — the offline judge's models read English only: such an answer is not graded.

Only lexical evidence is used (stems from :mod:`evaluator.text`), so each finding can quote the clauses it saw.
"""

from __future__ import annotations

import difflib
import itertools
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .text import STOPWORDS
from .text import stem as _light_stem

MISCONCEPTIONS_PATH = Path(__file__).resolve().parent.parent / "data" / "misconceptions.json"
# Caps on the score 0-10 for each kind of finding (below 7: never "correct").
CAPS = {
    "unrelated": 2.0,
    "misconception": 2.0,
    "contradiction": 3.0,
    "swapped roles": 3.0,
    "keyword list": 5.0,
    "denial": 6.0,
}
# Kinds of finding that are only a doubt: reported only where they lower the score.
DOUBTS = frozenset({"denial"})


def stem(word: str) -> str:
    """The light stem of :mod:`evaluator.text` without a final "e", so generate/generates/generated agree."""
    return _light_stem(word).rstrip("e") or word


_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_CLAUSE_END = re.compile(
    r"(?<=[.!?;:])\s+|\n+|,\s+(?=(?:while|whereas|but|because|so|although|which|and)\b)"
    r"|\s+(?=(?:while|whereas|because|since|so that)\b)"
    r"|\s+and\s+(?=(?:does|do|did|is|are|was|were|can|cannot|could|will|has|have|it|they|no|never)\b)"
)
# A clause that opens with a condition ("Without X, Y"; "If X, Y"): the condition and Y are read apart.
_CONDITION_START = re.compile(r"(?:without|if|when|unless|once|given)\b", re.IGNORECASE)
_CONDITION = re.compile(rf"^({_CONDITION_START.pattern}[^,]{{0,80}}),\s+(.+)$", re.IGNORECASE | re.DOTALL)
# A condition anywhere: two negations in it read as a contrapositive.
_CONDITIONAL = re.compile(r"\b(?:if|unless|when|without|only)\b", re.IGNORECASE)
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
    ("fast faster fastest quick quicker speed speeds", "slow slower slowest slows"),
    ("cheap cheaper", "expensive costly"),
    ("better best", "worse worst"),
    ("easy easier", "hard harder difficult"),
    ("strong stronger", "weak weaker"),
    ("dense denser", "sparse sparser"),
    ("include includes included", "exclude excludes excluded"),
    ("accept accepts accepted", "reject rejects rejected"),
    ("help helps helped", "hurt hurts harm harms"),
    ("global", "local"),
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


def _stems(text: str) -> set[str]:
    """The stems of every word of ``text``."""
    return {stem(w) for w in words(text)}


def words(text: str) -> list[str]:
    """Lowercased word tokens (letters of any script, digits; ``isn't`` stays one word)."""
    return [w.lower().replace("\u2019", "'") for w in _TOKEN.findall(text.replace("\u2019", "'"))]


_ASIDE = re.compile(
    r"\([^()]*\)|\bno matter\b|\bnot only\b|\bnot just\b|\bor not\b|(?:^|(?<=[.!?]\s))\s*(?:yes|no)\s*[,.!;:]",
    re.IGNORECASE,
)


def clauses(text: str) -> list[str]:
    """Sentences and clauses (split before while/whereas/but/because... after a comma), without asides in
    parentheses and idioms whose "no"/"not" negates nothing ("no matter", "not only", "whether or not", a
    sentence opening "No,")."""
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
    heads: list[str]  # per negation: the first of them ("" when none)

    @property
    def content(self) -> set[str]:
        """Content stems without the polarity words, for alignment."""
        return {s for s in self.stems if s not in _OPPOSITE}

    def governs(self, word: str) -> bool:
        """Whether one of the clause's negations governs ``word``."""
        return any(word in scope for scope in self.scopes)

    def unmatched_negations(self, other: _Clause) -> list[set[str]]:
        """The scopes of negations about what ``other`` says too (a negation elsewhere in a long clause is not)
        that nothing in ``other`` matches: a negation, or a word such as "reduces" or "prevents", governing some
        of the same words ("gradients don't vanish" / "reduces vanishing gradients")."""
        prevents = [set(other.stems[i + 1 : i + 1 + SCOPE]) for i, s in enumerate(other.stems) if s in _PREVENTS]
        return [
            scope
            for scope, head in zip(self.scopes, self.heads, strict=True)
            if (not scope or scope & set(other.stems))
            and not any(not mine or not scope or mine & scope for mine in other.scopes)
            # "reduces X" answers "does not X", not "does not avoid X" or "does not increase X" (read as polarity)
            and not (head not in _PREVENTS and head not in _OPPOSITE and any(mine & scope for mine in prevents))
        ]


SCOPE = 3  # content words after a negation that it governs
# Words that deny what follows them without a negation, so they can answer one ("reduces vanishing gradients").
_PREVENTS = frozenset(
    stem(w) for w in ("reduce", "reduces", "prevent", "prevents", "avoid", "avoids", "mitigate", "eliminate")
)
_ALTERNATIVE = re.compile(r"\b(?:rather than|instead of)\b", re.IGNORECASE)  # "X rather than Y": not Y
# Negations common in correct answers' own wording ("without copying", "little meaning"): not read as a denial.
_HEDGES = frozenset("without little hardly barely rarely seldom scarcely".split())  # noqa: SIM905


def _negation(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't") or (word.endswith("nt") and word[:-2] in _CONTRACTED)


def _unprefixed(word: str, other: set[str]) -> str | None:
    """The stem of ``word`` without its negating prefix if ``other`` has that stem and not the word's own
    ("immutable" where the other side says "mutable")."""
    if stem(word) in other:
        return None
    for prefix in _PREFIXES:
        rest = stem(word[len(prefix) :])
        if word.startswith(prefix) and len(rest) >= 4 and rest in other:
            return rest
    return None


def _clause(text: str, other: set[str] | None = None, *, firm: bool = False) -> _Clause:
    """``text`` as stems; a prefixed word (un-, in-, non-...) whose stem is in ``other`` counts as that stem plus a
    negation (immutable vs mutable), and so does "non X" ("non-linear" vs "linear"). ``firm``: only outright
    negations count (not "rather than", "without" or "hardly")."""
    stems: list[str] = []
    starts: list[int] = []  # index in stems where each negation's scope begins
    last_negation = -9
    tokens = words(text if firm else _ALTERNATIVE.sub(" not ", text))
    for i, w in enumerate(tokens):
        if firm and w in _HEDGES:
            continue
        if _negation(w):
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
        if other is not None and (rest := _unprefixed(w, other)):
            s = rest
            starts.append(len(stems))
        stems.append(s)
    return _Clause(
        text,
        stems,
        [set(stems[start : start + SCOPE]) for start in starts],
        ["".join(stems[start : start + 1]) for start in starts],
    )


def _plain(text: str) -> list[str]:
    """The stems of every word but negations, the auxiliaries that carry them and polarity words."""
    return [s for w in words(text) if not _negation(w) and w not in _CONTRACTED and (s := stem(w)) not in _OPPOSITE]


def _aligned(a: _Clause, r: _Clause) -> float:
    """How much clause ``a`` restates clause ``r`` (0-1): the share of their content stems they share."""
    ac, rc = a.content, r.content
    shared = len(ac & rc)
    if shared < 3:  # a short clause aligns only with the same words ("it does not overfit" / "it overfits")
        return 1.0 if shared and ac == rc and _likeness(_plain(a.text), _plain(r.text)) >= RESTATED else 0.0
    return min(shared / len(ac), shared / max(1, len(rc)) * 1.5, 1.0)


def _antonym_pairs(a: _Clause, r: _Clause) -> list[tuple[str, str]]:
    """Polarity words of ``r`` that ``a`` replaces by their opposite, as (``a``'s stem, ``r``'s stem), one per
    antonym group: where ``r`` uses one side of a group and ``a`` only the other, or where the two clauses say the
    same around a word and its opposite ("power increases with a larger sample" / "power decreases with...")."""
    pairs: dict[int, tuple[str, str]] = {}
    for tag, r0, r1, a0, a1 in difflib.SequenceMatcher(None, r.stems, a.stems, autojunk=False).get_opcodes():
        if tag == "replace":
            for rs, as_ in zip(r.stems[r0:r1], a.stems[a0:a1], strict=False):
                if rs in _OPPOSITE and _OPPOSITE.get(as_) == (_OPPOSITE[rs][0], 1 - _OPPOSITE[rs][1]):
                    pairs.setdefault(_OPPOSITE[rs][0], (as_, rs))
    a_sides = {_OPPOSITE[s]: s for s in a.stems if s in _OPPOSITE}
    r_sides = {_OPPOSITE[s]: s for s in r.stems if s in _OPPOSITE}
    for (group, side), rs in r_sides.items():
        if (group, 1 - side) in r_sides:
            continue  # the reference uses both sides: only the word-by-word comparison above can tell
        if (group, 1 - side) in a_sides and (group, side) not in a_sides:
            pairs.setdefault(group, (a_sides[group, 1 - side], rs))
    return list(pairs.values())


def _comparison_swapped(a: str, r: str) -> bool:
    """Whether the two sides of a "than" comparison are swapped between the clauses."""
    a_parts, r_parts = re.split(r"\bthan\b", a.lower(), maxsplit=1), re.split(r"\bthan\b", r.lower(), maxsplit=1)
    if len(a_parts) < 2 or len(r_parts) < 2:
        return False
    a_before, a_after = ({stem(w) for w in words(p) if w not in STOPWORDS} for p in a_parts)
    r_before, r_after = ({stem(w) for w in words(p) if w not in STOPWORDS} for p in r_parts)
    return bool((a_before & r_after) - r_before) and bool((a_after & r_before) - r_after)


def _disagreements(a: _Clause, r: _Clause) -> int:
    """Claims on which two aligned clauses disagree: a negation one side lacks, a word replaced by its opposite,
    a comparison turned round. A negation governing the opposite word cancels it ("does not decrease" /
    "increases"), and two unmatched negations of a condition cancel each other."""
    negations = len(a.unmatched_negations(r)) + len(r.unmatched_negations(a))
    if negations > 1 and _CONDITIONAL.search(a.text + " " + r.text):
        negations %= 2  # "if you do not change it, it is not controlled": a contrapositive agrees
    flips = 0
    for a_stem, r_stem in _antonym_pairs(a, r):
        if negations and (a.governs(a_stem) or r.governs(r_stem)):
            negations -= 1
        else:
            flips += 1
    return negations + flips + _comparison_swapped(a.text, r.text)


ALIGNED = 0.7  # a clause restates another when _aligned reaches this


_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")


def _clauses_of(text: str, other: set[str], *, firm: bool = False) -> list[_Clause]:
    """The clauses of every sentence of ``text``."""
    return [_clause(c, other, firm=firm) for sentence in _SENTENCE.split(text) for c in clauses(sentence)]


def _units(text: str, other: set[str]) -> list[_Clause]:
    """The clauses of ``text``, then each two neighbours in a sentence read as one (not a condition and what
    follows it): "It is cheap to compute and does not saturate" is split in two, "It is expensive to compute and
    saturates" is not. Each negation still governs words of its own clause only."""
    units, joined = [], []
    for sentence in _SENTENCE.split(text):
        parts = _clauses_of(sentence, other)
        units += parts
        for first, second in itertools.pairwise(parts):
            if not _CONDITION_START.match(first.text):
                joined.append(
                    _Clause(
                        f"{first.text} {second.text}",
                        first.stems + second.stems,
                        first.scopes + second.scopes,
                        first.heads + second.heads,
                    )
                )
    return units + joined


def contradictions(answer: str, reference: str) -> list[Finding]:
    """Answer clauses (or two neighbouring clauses) that restate a reference clause (or two) with the opposite
    polarity."""
    refs = _units(reference, _stems(answer))
    found: dict[str, Finding] = {}
    for a in _units(answer, _stems(reference)):
        if any(seen in a.text for seen in found):
            continue  # a clause already found, read with its neighbour
        best = max(refs, key=lambda r: _aligned(a, r), default=None)
        if best is not None and _aligned(a, best) >= ALIGNED and _disagreements(a, best):
            found[a.text] = Finding(
                "contradiction", f'"{_short(a.text)}" says the opposite of the reference: "{_short(best.text)}"'
            )
    return list(found.values())


WEAKLY_ALIGNED = 0.5  # a clause this close to a reference clause is about the same point
# A word in quotes is mentioned, not said: "stop words such as 'not'".
_QUOTED = re.compile(r"(?<!\w)['\"\u2018\u201c][^'\"\u2018\u2019\u201c\u201d\n]{1,40}?['\"\u2019\u201d](?!\w)")


def denials(answer: str, reference: str) -> list[Finding]:
    """Answer clauses about a point of the reference (:data:`WEAKLY_ALIGNED`, too reworded for
    :func:`contradictions` to compare them) that deny, with an outright negation, something the reference states
    without one: "the parameters are not updated after each batch" against "the batch processed before one
    parameter update". Negating a word whose opposite the reference uses agrees, and so does a contrapositive."""
    answer = _QUOTED.sub(" ", answer)
    reference_stems = _stems(reference)
    ws = words(answer)
    if not any((_negation(w) and w not in _HEDGES) or w == "non" or _unprefixed(w, reference_stems) for w in ws):
        return []  # nothing negated: the common case, decided quickly
    answer_stems = {stem(w) for w in ws}
    whole, refs = _clause(reference, answer_stems), _clauses_of(reference, answer_stems)
    sides = {_OPPOSITE[s] for s in whole.stems if s in _OPPOSITE}
    for sentence in _SENTENCE.split(answer):
        parts = _clauses_of(sentence, reference_stems, firm=True)
        if _CONDITIONAL.search(sentence) and sum(len(a.scopes) for a in parts) > 1:
            continue  # "if you do not change it, it is not controlled": a contrapositive
        for a in parts:
            if finding := _denial(a, refs, whole, sides):
                return [finding]
    return []


def _denial(a: _Clause, refs: list[_Clause], whole: _Clause, sides: set[tuple[int, int]]) -> Finding | None:
    """The finding for answer clause ``a`` if it denies what the reference (``whole``, its clauses ``refs``, the
    sides of its polarity words ``sides``) states."""
    if not a.scopes or _CONDITION_START.match(a.text):
        return None  # a condition states nothing
    best = max(refs, key=lambda r: _aligned(a, r), default=None)
    if best is None or _aligned(a, best) < WEAKLY_ALIGNED:
        return None
    for scope in a.unmatched_negations(whole):
        if scope and not any(s in _OPPOSITE and (_OPPOSITE[s][0], 1 - _OPPOSITE[s][1]) in sides for s in scope):
            return Finding(
                "denial",
                f'"{_short(a.text)}" denies what the reference states ("{_short(best.text)}"): the offline judge '
                "cannot tell whether it contradicts it",
            )
    return None


def misconceptions(question: str, reference: str, answer: str) -> list[Finding]:
    """Answer clauses that state a known misconception about ``question`` (same polarity, same terms of the
    question: "the median is the middle value" does not state "the mean is the middle value"), unless the clause
    restates a clause of the reference nearly word for word, closer than the misconception ("the harmonic mean"
    is not "the arithmetic mean")."""
    statements = known_misconceptions().get(_normalise(question), [])
    if not statements:
        return []
    question_stems, answer_stems = _stems(question), _stems(answer)
    reference_clauses = [_plain(c) for c in clauses(reference)]
    # each statement as stems, as a clause read against the answer, and as plain words: the same for every clause
    read = [
        (statement, _stems(statement), _clause(statement, answer_stems), _plain(statement)) for statement in statements
    ]
    found = []
    for text in clauses(answer):
        said = _plain(text)
        closest = max((_likeness(said, c) for c in reference_clauses), default=0.0)
        for statement, statement_stems, m, plain in read:
            a = _clause(text, statement_stems)
            if (
                _aligned(a, m) >= ALIGNED
                and not _disagreements(a, m)
                and a.content & question_stems >= m.content & question_stems
                and (closest < RESTATED or _likeness(said, plain) > closest)
            ):
                found.append(Finding("misconception", f'"{_short(text)}" states a known misconception: {statement}'))
                break
    return found


RESTATED = 0.8  # a clause this alike a reference clause, word for word, restates it


def _likeness(a: list[str], b: list[str]) -> float:
    """How alike two word sequences are, word for word and in order (0-1)."""
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def moved_terms(reference: str, answer: str) -> list[Finding]:
    """Words the answer moves between two points of the reference: answer clauses restate two reference clauses,
    each without one of its own words and with one of the other's ("In few-shot prompting the model receives
    only an instruction... In zero-shot prompting the prompt also contains demonstrations")."""
    refs = [_clause(c) for c in clauses(reference)]
    moves: dict[tuple[int, int], tuple[str, _Clause]] = {}  # (from, to) reference clause -> a word, where it went
    restated: list[tuple[_Clause, int]] = []
    for text in clauses(answer):
        a = _clause(text)
        best = max(range(len(refs)), key=lambda i: _aligned(a, refs[i]), default=None)
        if best is not None and _aligned(a, refs[best]) >= ALIGNED:
            restated.append((a, best))
    for a, to in restated:
        for word in sorted(a.content - refs[to].content):
            for b, source in restated:
                if source != to and word in refs[source].content - b.content:
                    moves.setdefault((source, to), (word, a))
    for (source, to), (word, a) in sorted(moves.items()):
        if (to, source) in moves and moves[to, source][0] != word:
            said = next((w for w in words(a.text) if stem(w) == word), word)
            return [
                Finding(
                    "swapped roles",
                    f'"{_short(a.text)}" says "{said}" where the reference says it of another point: '
                    f'"{_short(refs[source].text)}"',
                )
            ]
    return []


# Words that, alone between two exchanged terms, make the exchange a reordering: "X and Y", "X is Y".
_LINKS = frozenset("and or nor vs versus is are was were be the a an".split())  # noqa: SIM905
EXCHANGED = 4  # the most words of a term that exchanged_terms compares


def exchanged_terms(reference: str, answer: str) -> list[Finding]:
    """Two terms exchanged in the reference's own words ("MAP chooses the parameters that maximize the
    likelihood... MLE maximizes the posterior"): the answer says the reference word for word but for two
    replacements, each between words it repeats, that each put one of the reference's terms in the other's place
    ("training and validation" / "validation and training", "X is Y" / "Y is X" are only reordered)."""
    r, a = words(reference), words(answer)
    ops = difflib.SequenceMatcher(None, r, a, autojunk=False).get_opcodes()
    replaced = []  # (op index, reference words, answer words)
    for k, (tag, r0, r1, a0, a1) in enumerate(ops):
        between_equal = (k == 0 or ops[k - 1][0] == "equal") and (k == len(ops) - 1 or ops[k + 1][0] == "equal")
        if tag == "replace" and between_equal and max(r1 - r0, a1 - a0) <= EXCHANGED:
            replaced.append((k, r[r0:r1], a[a0:a1]))
    content = lambda ws: {s for w in ws if (s := stem(w.removesuffix("'s"))) in _OPPOSITE or w not in STOPWORDS}  # noqa: E731
    for i, (k1, ref1, ans1) in enumerate(replaced):
        for k2, ref2, ans2 in replaced[i + 1 :]:
            b1, c1, b2, c2 = content(ref1), content(ans1), content(ref2), content(ans2)
            there, back = (b1 & c2) - c1 - b2, (b2 & c1) - c2 - b1
            # each replacement is mostly the other's term: not synonyms traded ("individual" / "person")
            if (
                not there
                or not back
                or any(2 * len(x) < len(y) for x, y in ((there, b1), (there, c2), (back, b2), (back, c1)))
            ):
                continue
            if k2 == k1 + 2 and set(r[ops[k1 + 1][1] : ops[k1 + 1][2]]) <= _LINKS:
                continue
            return [
                Finding(
                    "swapped roles",
                    f'The answer says "{" ".join(ans1)}" where the reference says "{" ".join(ref1)}", and '
                    f'"{" ".join(ans2)}" where it says "{" ".join(ref2)}"',
                )
            ]
    return []


REUSED = 0.3  # share of an answer's word pairs and triples found in the reference: it reuses the reference's words
REALIGNED = 3  # word pairs and triples of the reference that exchanging two terms back must gain
TERM_WORDS = 2  # the most words of a term that realigned_terms exchanges


_BREAK = re.compile(r"[.,;:!?()\[\]{}\n]")
BREAK = "|"  # a token for punctuation between words
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s*)\s*$")


@lru_cache(maxsize=4096)
def _term_tokens(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Tokens for comparing wordings: stems, stopwords as they are, and a one-letter capital kept apart from the
    article ("P(A|B)"); then the words as written, for quoting."""
    text = text.replace("\u2019", "'")
    tokens, written = [], []
    end = 0
    for match in _TOKEN.finditer(text):
        w, low = match[0], match[0].lower()
        gap = text[end : match.start()]
        if tokens and _BREAK.search(gap) and not (gap == "," and written[-1].isdigit() and w.isdigit()):
            tokens.append(BREAK)  # word pairs do not run across punctuation ("1,000" is one number)
            written.append("")
        tokens.append(w if _variable(text, match) else low if low in STOPWORDS else stem(low.removesuffix("'s")))
        written.append(w)
        end = match.end()
    return tuple(tokens), tuple(written)


def _variable(text: str, match: re.Match[str]) -> bool:
    """Whether the word ``match`` of ``text`` is a one-letter capital naming something ("event A", "P(A|B)"),
    not the article or the pronoun."""
    w = match[0]
    opening = w == "A" and _SENTENCE_START.search(text[: match.start()])
    return len(w) == 1 and w.isupper() and w != "I" and not opening


def _grams(tokens: Sequence[str]) -> Counter[tuple[str, ...]]:
    """Word pairs and triples, but those of stopwords only."""
    grams = (tuple(tokens[i : i + n]) for n in (2, 3) for i in range(len(tokens) - n + 1))
    return Counter(gram for gram in grams if BREAK not in gram and not all(t in STOPWORDS for t in gram))


def _parallel(tokens: Sequence[str], i: int, first: tuple[str, ...], second: tuple[str, ...]) -> int:
    """The length of "first ... second" at ``i`` with at most three stopwords (or the word before ``first``, or
    words of the terms) between them: "X and Y", "bulb A and bulb B" name both terms alike, not in each other's
    place."""
    end = i + len(first)
    if tuple(tokens[i:end]) != first:
        return 0
    before = tokens[i - 1] if i else None
    for gap in range(4):
        j = end + gap
        if tuple(tokens[j : j + len(second)]) == second and all(
            t in STOPWORDS or t in (BREAK, before) or t in first or t in second for t in tokens[end:j]
        ):
            return j + len(second) - i
    return 0


def _exchange(tokens: Sequence[str], x: tuple[str, ...], y: tuple[str, ...]) -> list[str]:
    """``tokens`` with every ``x`` and ``y`` put in each other's place (not where they stand side by side)."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if span := _parallel(tokens, i, x, y) or _parallel(tokens, i, y, x):
            out += tokens[i : i + span]
            i += span
        elif tuple(tokens[i : i + len(x)]) == x:
            out += y
            i += len(x)
        elif tuple(tokens[i : i + len(y)]) == y:
            out += x
            i += len(y)
        else:
            out.append(tokens[i])
            i += 1
    return out


def realigned_terms(reference: str, answer: str) -> list[Finding]:
    """Two terms in each other's place in an answer that reuses the reference's wording: exchanging them back
    makes the answer match more of the reference's word pairs and triples ("P(A|B) is the probability that event
    B occurs given that event A has occurred"; "In ELT, data is extracted, transformed, then loaded")."""
    (r, reference_written), (a, written) = _term_tokens(reference), _term_tokens(answer)
    reference_grams, answer_grams = _grams(r), _grams(a)
    matched = answer_grams & reference_grams
    if sum(matched.values()) < REUSED * max(1, sum(answer_grams.values())):
        return []
    # A term in its place has every word pair and triple around it in the reference: only misplaced ones move,
    # and only to where the reference has a word pair with it.
    misplaced = {t for gram in answer_grams if gram not in reference_grams for t in gram}
    candidates = sorted(term for term in _terms(r) & _terms(a) if misplaced.issuperset(term))
    fits = _fits(a, candidates, {gram for gram in reference_grams if len(gram) == 2})
    best, pair = REALIGNED - 1, None
    for x, y in itertools.combinations(candidates, 2):
        if set(x) & set(y) or y not in fits[x] or x not in fits[y]:
            continue
        after = _grams(_exchange(a, x, y)) & reference_grams
        gained = after - matched
        gain = sum(gained.values()) - sum((matched - after).values())
        # both terms must land in the reference's wording, not one of them by chance
        if gain > best and all(any(set(term) & set(gram) for gram in gained) for term in (x, y)):
            best, pair = gain, (x, y)
    if pair is None:
        return []
    x, y = pair
    return [
        Finding(
            "swapped roles",
            f'The answer says "{_quote(x, a, written)}" where the reference says '
            f'"{_quote(y, r, reference_written)}", and "{_quote(y, a, written)}" where it says '
            f'"{_quote(x, r, reference_written)}"',
        )
    ]


def _fits(
    tokens: Sequence[str], terms: list[tuple[str, ...]], pairs: set[tuple[str, ...]]
) -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    """For each of ``terms``, the others that would make a word pair of ``pairs`` next to one of its places in
    ``tokens``."""
    fits: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for x in terms:
        spots = [
            (tokens[i - 1] if i else None, tokens[i + len(x)] if i + len(x) < len(tokens) else None)
            for i in range(len(tokens) - len(x) + 1)
            if tuple(tokens[i : i + len(x)]) == x
        ]
        fits[x] = {y for y in terms for left, right in spots if (left, y[0]) in pairs or (y[-1], right) in pairs}
    return fits


def _terms(tokens: Sequence[str]) -> set[tuple[str, ...]]:
    """Runs of up to :data:`TERM_WORDS` content tokens."""
    runs = (tuple(tokens[i : i + n]) for n in range(1, TERM_WORDS + 1) for i in range(len(tokens) - n + 1))
    return {run for run in runs if not any(t in STOPWORDS or t == BREAK for t in run)}


def _quote(term: tuple[str, ...], tokens: Sequence[str], written: Sequence[str]) -> str:
    """``term`` as the text of ``tokens`` writes it."""
    i = next(i for i in range(len(tokens)) if tuple(tokens[i : i + len(term)]) == term)
    return " ".join(written[i : i + len(term)])


# Words that make a sentence: articles, auxiliaries, pronouns. A list of terms has almost none, even when its
# items carry prepositions ("small fraction of real traffic").
_STRUCTURE = frozenset(
    """a an the is are was were be been being am it its they them their this that these those which who whose can
    could will would should may might must does do did has have had we you he she there""".split()  # noqa: SIM905
)
LIST_FUNCTION_SHARE = 0.12  # below this share of function words, words are a list
_LIST_ITEM = re.compile(r"[,;\n\u2022|]+|(?<=[.!?])\s+|\s[-\u2013\u2014*]\s|^\s*[-*]\s", re.MULTILINE)


def keyword_list(answer: str) -> list[Finding]:
    """A finding when the answer lists terms without sentences: (almost) no function words; or items split by
    commas, semicolons, line breaks or bullets, few of them with an article, auxiliary or pronoun; or a long
    run of words without any that does not end like a sentence."""
    answer = _TOKEN.sub(lambda m: "x" if _variable(answer, m) else m[0], answer)  # "event A" has no article
    ws = words(answer)
    if len(ws) < 4:
        return []
    function = sum(w in STOPWORDS or w in NEGATIONS for w in ws) / len(ws)
    structure = sum(w in _STRUCTURE for w in ws) / len(ws)
    items = [words(item) for item in _LIST_ITEM.split(answer)]
    items = [item for item in items if item]
    framed = [item for item in items if any(w in _STRUCTURE for w in item)]
    listed = len(items) >= 4 and len(ws) / len(items) <= 4 and sum(map(len, framed)) <= len(ws) / 4
    sentence = answer.rstrip().endswith((".", "!", "?"))  # a terse sentence ends like one; lists rarely do
    bare = function < LIST_FUNCTION_SHARE and not (sentence and structure)
    run_on = len(ws) >= 12 and structure < 0.04 and function < 0.2 and not sentence
    if bare or (len(ws) >= 6 and listed) or run_on:
        return [Finding("keyword list", "The answer lists terms without sentences saying how they relate")]
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
        *misconceptions(question, reference, answer),
        *(contradictions(answer, reference) or denials(answer, reference)),
        # one way of saying a swap is enough
        *(exchanged_terms(reference, answer) or moved_terms(reference, answer) or realigned_terms(reference, answer)),
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
