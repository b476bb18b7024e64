"""PII scrubbing cost per record, on the labelled corpus (tests/data/pii_corpus.jsonl) and on plain answers.

Prints microseconds per record (best of ``--rounds``) for the corpus (every record has digits or an ``@``, so
every rule runs) and for answers without digits, and checks that each corpus record is scrubbed as labelled.

Run: ``.venv/bin/python -m bench.pii_scrub [--rounds 5] [--repeat 200]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from evaluator.pii import scrub_pii

ROOT = Path(__file__).resolve().parent.parent

CORPUS = ROOT / "tests" / "data" / "pii_corpus.jsonl"
PLAIN = "Regularisation adds a penalty on the size of the weights to the loss, which reduces overfitting. " * 3


def per_record_us(texts: list[str], rounds: int, repeat: int) -> float:
    """Best-of-``rounds`` microseconds per call of :func:`scrub_pii` over ``texts`` (each repeated ``repeat`` times)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            for text in texts:
                scrub_pii(text)
        best = min(best, (time.perf_counter() - started) / (repeat * len(texts)))
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    wrong = [r["text"] for r in rows if scrub_pii(r["text"]) != r["scrubbed"]]
    texts = [r["text"] for r in rows]
    scrub_pii("warm up 2025550173")  # loads the phone-number metadata once, as the first real call would
    corpus_us = per_record_us(texts, args.rounds, args.repeat)
    plain_us = per_record_us([PLAIN], args.rounds, args.repeat * 10)
    print(f"corpus: {len(rows)} records, {len(wrong)} scrubbed differently from their label")
    print(f"per record: corpus {corpus_us:.1f} us, plain answer without digits {plain_us:.2f} us")
    for text in wrong:
        print(f"  differs: {text[:100]!r}")
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
