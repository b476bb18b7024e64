"""Sentiment: the real transformers loading path on a tiny local model, batching, VADER fallback, concurrency."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from evaluator.config import load_settings
from evaluator.sentiment import LABELS, SentimentAnalyzer, map_label

ROOT = Path(__file__).resolve().parent.parent
_WORD_LIST = """
the a this that is was not bad good great grade score answer feedback wrong right correct fair unfair
thanks helpful useless judge i my me it so very really at all and but
"""
WORDS = _WORD_LIST.split()


def build_tiny_model(folder: Path, id2label: dict[int, str], *, seed: int = 0) -> Path:
    """Save a tiny BERT classifier with random weights and a real WordPiece tokenizer into ``folder``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    letters = "abcdefghijklmnopqrstuvwxyz"
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = [*specials, *WORDS, *letters, *"0123456789!?.,'", *(f"##{c}" for c in letters)]
    # No model_max_length on purpose: the analyzer must still truncate long comments to the position embeddings.
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        initializer_range=0.5,  # large random weights, so different texts get clearly different scores
        num_labels=len(id2label),
        id2label=id2label,
        label2id={label: i for i, label in id2label.items()},
    )
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-label (NEGATIVE/POSITIVE, like SST-2) tiny model saved to a temp folder."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-sst2"), {0: "NEGATIVE", 1: "POSITIVE"})


class CountingPipeline:
    """Delegates to a real transformers pipeline and records the size of every call."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.calls: list[int] = []

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        self.calls.append(len(inputs) if isinstance(inputs, list) else 1)
        return self.pipe(inputs, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pipe, name)


class CountingFactory:
    """A ``pipeline_factory`` wrapping the real ``transformers.pipeline``."""

    def __init__(self) -> None:
        self.built: list[CountingPipeline] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> CountingPipeline:
        from transformers import pipeline

        pipe = CountingPipeline(pipeline(*args, **kwargs))
        with self._lock:
            self.built.append(pipe)
        return pipe


COMMENTS = [
    "not bad at all",
    "wrong",
    "thx!",
    "Great, another wrong grade.",
    "The feedback is useless, it does not explain anything.",
    "ok",
    "Fair grade, I agree, really helpful.",
    "so so",
    " ".join(["this answer was correct but the judge said it was wrong"] * 40),  # far beyond 64 positions
    "I answered from memory.",
]


def test_model_named_by_setting_classifies_a_batch_in_one_call_in_order(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTIMENT_MODEL_NAME", str(tiny_model))
    name = load_settings(dotenv_path=None).sentiment_model_name
    factory = CountingFactory()
    analyzer = SentimentAnalyzer(name, pipeline_factory=factory, batch_size=4)

    batched = analyzer.analyze_many(COMMENTS)

    assert analyzer.backend == f"transformers:{tiny_model}"
    assert len(factory.built) == 1
    assert factory.built[0].calls == [len(COMMENTS)]  # one pipeline call for the whole list
    assert len(batched) == len(COMMENTS)
    assert {r.label for r in batched} <= {"negative", "positive"}  # an SST-2-style model has no neutral
    assert all(0.0 <= r.score <= 1.0 and r.backend == analyzer.backend for r in batched)
    assert len({round(r.score, 4) for r in batched}) > 3  # texts differ, so the order check below means something
    one_by_one = [analyzer.analyze(text) for text in COMMENTS]
    assert [r.label for r in batched] == [r.label for r in one_by_one]
    assert [r.score for r in batched] == pytest.approx([r.score for r in one_by_one], abs=1e-4)
    assert len(factory.built) == 1  # loaded once


def test_three_generic_labels_map_to_all_sentiments(tmp_path: Path) -> None:
    folder = build_tiny_model(tmp_path / "tiny3", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    analyzer = SentimentAnalyzer(str(folder))
    results = analyzer.analyze_many(COMMENTS)
    assert analyzer.backend == f"transformers:{folder}"
    assert {r.label for r in results} <= set(LABELS)
    # The three class probabilities of each text are kept apart, so the winner has at least a third.
    assert all(1 / 3 - 1e-6 <= r.score <= 1.0 for r in results)


@pytest.mark.parametrize(
    ("label", "num_labels", "expected"),
    [
        ("POSITIVE", 2, "positive"),
        ("NEGATIVE", 2, "negative"),
        ("neutral", 3, "neutral"),
        ("Negative", 3, "negative"),
        ("LABEL_0", 2, "negative"),
        ("LABEL_1", 2, "positive"),
        ("LABEL_1", 3, "neutral"),
        ("LABEL_2", 3, "positive"),
        ("2 stars", 5, "negative"),
        ("3 stars", 5, "neutral"),
        ("5 stars", 5, "positive"),
        ("LABEL_3", 3, None),
        ("LABEL_1", 7, None),
        ("joy", 6, None),
    ],
)
def test_model_labels_map_to_negative_neutral_positive(label: str, num_labels: int, expected: str | None) -> None:
    assert map_label(label, num_labels) == expected


def test_model_whose_labels_are_not_sentiments_falls_back_to_vader(tmp_path: Path) -> None:
    folder = build_tiny_model(tmp_path / "emotions", {0: "joy", 1: "anger"})
    analyzer = SentimentAnalyzer(str(folder))
    assert analyzer.analyze("thanks, fair grade").backend == "vader"
    assert "joy" in (analyzer.fallback_reason or "")


@pytest.mark.parametrize("kind", ["missing folder", "folder without weights", "hub id not cached, offline", "empty"])
def test_unloadable_model_falls_back_to_vader_and_logs_once(
    kind: str,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if kind == "missing folder":
        name = str(tmp_path / "no-such-model")
    elif kind == "folder without weights":
        (tmp_path / "empty-model").mkdir()
        name = str(tmp_path / "empty-model")
    elif kind == "empty":
        monkeypatch.chdir(tiny_model)
        name = ""  # never "the model in the current folder"
    else:
        name = "example-org/no-such-sentiment-model"  # HF_HUB_OFFLINE=1 comes from conftest
    caplog.set_level(logging.WARNING, logger="evaluator.sentiment")
    analyzer = SentimentAnalyzer(name)

    first = analyzer.analyze_many(["thanks, really helpful", "this grade is wrong and unfair"])
    second = analyzer.analyze("ok then")

    assert analyzer.backend == "vader"
    assert {r.backend for r in [*first, second]} == {"vader"}
    assert [r.label for r in first] == ["positive", "negative"]
    warnings = [r for r in caplog.records if r.name == "evaluator.sentiment" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert name in warnings[0].getMessage() and analyzer.fallback_reason in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thanks, the feedback is really helpful and the grade is fair!", "positive"),
        ("not bad at all", "positive"),
        ("The question was about precision and recall.", "neutral"),
        ("I answered from memory.", "neutral"),
        ("This grade is wrong and the explanation is useless.", "negative"),
        ("not helpful", "negative"),
    ],
)
def test_vader_reads_clear_polarity(text: str, expected: str, tmp_path: Path) -> None:
    result = SentimentAnalyzer(str(tmp_path / "no-model")).analyze(text)
    assert (result.label, result.backend) == (expected, "vader")
    assert 0.0 <= result.score <= 1.0


def test_concurrent_first_calls_load_the_model_once(tiny_model: Path) -> None:
    factory = CountingFactory()
    analyzer = SentimentAnalyzer(str(tiny_model), pipeline_factory=factory)
    start = threading.Barrier(8)
    results: dict[int, Any] = {}

    def worker(i: int) -> None:
        start.wait()
        results[i] = analyzer.analyze(COMMENTS[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert len(factory.built) == 1
    assert sorted(results) == list(range(8))
    assert {r.backend for r in results.values()} == {f"transformers:{tiny_model}"}


def test_nothing_loads_before_first_use(tiny_model: Path) -> None:
    factory = CountingFactory()
    analyzer = SentimentAnalyzer(str(tiny_model), pipeline_factory=factory)
    assert analyzer.loaded_backend is None and factory.built == []
    assert analyzer.backend == f"transformers:{tiny_model}"  # asking for the backend loads it
    assert analyzer.loaded_backend == analyzer.backend and len(factory.built) == 1


def test_importing_the_module_does_not_import_transformers() -> None:
    code = "import sys, evaluator.sentiment; print('transformers' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
