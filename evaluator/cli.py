"""Command line: ``python -m evaluator <command>``; ``--help`` lists the commands."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import views
from .config import load_settings
from .errors import EvaluatorError, InputError
from .models import EvaluationRecord
from .service import Evaluator
from .text import plural

MAX_LISTED_ERRORS = 20  # row errors printed by agreement (the count of all of them follows)


def _print_evaluation(record: EvaluationRecord) -> None:
    r = record.result
    label = f"{r.backend} judge ({r.model})"
    head = f"[{record.question_id}] " if record.question_id else ""
    print(f"{head}{record.question}")
    if not r.ok or r.grade is None:
        print(f"Error from the {label}: {r.error}")
        return
    g = r.grade
    print(f"Score: {g.score:.1f}/10 — {g.verdict}{views.confidence_note(g)}   ({label})")
    if g.caveat:
        print(f"Note: {g.caveat}")
    print("Criteria: " + ", ".join(f"{k} {v}/5" for k, v in g.criteria.items()))
    print(f"Feedback: {g.feedback}")
    if g.missed_points:
        print("Missed: " + "; ".join(g.missed_points))
    print(f"Reference: {record.reference}")
    cost = f"${r.usage.cost_usd:.6f}" if r.usage.cost_usd else "$0"
    print(f"Tokens: {r.usage.total_tokens}  Cost: {cost}  Cache hit: {r.cache_hit}  Evaluation id: {record.id}")


def _say(line: str, quiet: bool) -> None:
    """A progress line on stderr (stdout keeps the results), unless ``--quiet``."""
    if not quiet:
        print(line, file=sys.stderr, flush=True)


def cmd_evaluate(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Grade one answer and print the grade."""
    evaluator.log.ensure_writable()  # a grade whose record cannot be kept is not worth the judge call
    record = evaluator.evaluate(
        args.answer, question_id=args.question_id, question=args.question, reference=args.reference, source="cli"
    )
    if args.json:
        print(json.dumps(record.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_evaluation(record)
    return 0 if record.result.ok else 1


def cmd_feedback(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Record feedback on a logged evaluation and print the sentiment read from the comment."""
    evaluator.log.ensure_writable()
    record = evaluator.submit_feedback(args.evaluation_id, agree=args.agree, rating=args.rating, comment=args.comment)
    if args.json:
        print(json.dumps(record.to_dict(), ensure_ascii=False, indent=2))
    else:
        s = record.sentiment
        print(f"Feedback {record.id} recorded for evaluation {record.evaluation_id}.")
        print(f"Sentiment: {s.label} (confidence {s.score:.2f}, {s.backend})")
    return 0


def cmd_batch(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Grade a JSONL/CSV file of answers into a results file, concurrently and resumably."""
    from tqdm import tqdm

    from .batch import run_batch
    from .batch_io import parse_batch
    from .candidate import build_candidate, load_candidate
    from .runs import RunInfo

    if args.fail_under is not None and not 0 <= args.fail_under <= 10:
        raise InputError(f"--fail-under is a score from 0 to 10, got {args.fail_under}")
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise InputError(f"The results file {args.output} is the input file: give another -o/--output path.")
    evaluator.log.ensure_writable()
    models = args.candidate_model or []
    if len(models) > 1:
        return _head_to_head(evaluator, args, models)
    candidate = build_candidate(evaluator.settings, models[0] if models else None)
    parsed = parse_batch(Path(args.input), evaluator=evaluator, candidate=candidate is not None)
    for message in parsed.errors:
        print(f"{args.input}: {message}", file=sys.stderr)
    try:
        # A local model loads before the bar starts: the bar's rate and time left then count the items only.
        load_candidate(candidate, answers=parsed.needs_candidate, announce=lambda line: _say(line, args.quiet))
        with tqdm(total=len(parsed.items), unit="item", desc="batch", file=sys.stderr, disable=args.quiet) as bar:

            def progress(done: int, total: int, row: dict) -> None:
                bar.update(done - bar.n)

            summary = run_batch(
                evaluator,
                parsed.items,
                concurrency=args.concurrency,
                candidate=candidate,
                output=args.output,
                on_result=progress,
                job_id=args.job_id,
                run=RunInfo(name=args.name, source="cli", input=Path(args.input).name),
            )
    finally:
        if candidate is not None:
            candidate.close()
    print(summary.text())
    if parsed.errors:
        print(f"Malformed rows: {len(parsed.errors)} (listed above on stderr)")
    print(f"Results: {args.output}")
    if args.fail_under is not None and (summary.mean_score is None or summary.mean_score < args.fail_under):
        mean = "no item was graded" if summary.mean_score is None else f"the mean score {summary.mean_score:.2f}"
        graded = plural(summary.ok, "item")
        print(f"FAIL: {mean} is below --fail-under {args.fail_under:g} ({graded} graded)", file=sys.stderr)
        return 1
    return 1 if summary.failed or parsed.errors else 0


def _head_to_head(evaluator: Evaluator, args: argparse.Namespace, models: list[str]) -> int:
    """``batch --candidate-model A --candidate-model B ...``: each model answers, then a pairwise judgement."""
    from .batch_io import parse_batch
    from .candidate import build_candidate, load_candidate
    from .headtohead import model_output, run_head_to_head

    candidates = [c for c in (build_candidate(evaluator.settings, m) for m in models) if c is not None]
    try:
        parsed = parse_batch(Path(args.input), evaluator=evaluator, candidate=True)
        for message in parsed.errors:
            print(f"{args.input}: {message}", file=sys.stderr)
        for candidate in candidates:
            load_candidate(candidate, answers=bool(parsed.items), announce=lambda line: _say(line, args.quiet))
        report = run_head_to_head(
            evaluator,
            parsed.items,
            candidates,
            output=Path(args.output),
            name=args.name,
            concurrency=args.concurrency,
            job_id=args.job_id,
            on_progress=None if args.quiet else lambda line: print(line, file=sys.stderr),
        )
    finally:
        for candidate in candidates:
            candidate.close()
    print(report.text())
    for model in report.runs:
        print(f"Results of {model}: {model_output(Path(args.output), model)}")
    failed = any(s.failed for s in report.runs.values()) or any(p.errors for p in report.pairs)
    if args.fail_under is not None:
        low = [
            (m, s.mean_score) for m, s in report.runs.items() if s.mean_score is None or s.mean_score < args.fail_under
        ]
        if low:
            means = ", ".join(f"{m} {'n/a' if v is None else f'{v:.2f}'}" for m, v in low)
            print(f"FAIL: mean score below --fail-under {args.fail_under:g}: {means}", file=sys.stderr)
            return 1
    return 1 if failed or parsed.errors else 0


def cmd_agreement(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Grade a human-graded file (resumably) and print the judge's agreement with the human grades."""
    from dataclasses import replace

    from tqdm import tqdm

    from .agreement import check_results_judge, default_output, measure_agreement, parse_human_file
    from .batch import default_job_id, run_batch
    from .batch_io import read_results
    from .errors import ConfigError

    settings = evaluator.settings
    backend = args.judge or settings.effective_judge_backend
    if backend == "openai" and not settings.openai_api_key:
        raise ConfigError("--judge openai needs OPENAI_API_KEY to be set")
    if backend != settings.effective_judge_backend:
        evaluator = Evaluator(replace(settings, judge_backend=backend), log=evaluator.log)
    output = Path(args.output) if args.output else default_output(args.input, backend)
    if output.resolve() == Path(args.input).resolve():
        raise InputError(f"The results file {output} is the input file: give another -o/--output path.")
    check_results_judge(read_results(output), backend, output)
    evaluator.log.ensure_writable()
    grades = parse_human_file(Path(args.input), evaluator=evaluator, scale=args.scale)
    for message in grades.errors[:MAX_LISTED_ERRORS]:
        print(f"{args.input}: {message}", file=sys.stderr)
    if len(grades.errors) > MAX_LISTED_ERRORS:
        print(f"{args.input}: ... and {len(grades.errors) - MAX_LISTED_ERRORS} more", file=sys.stderr)
    with tqdm(total=len(grades.items), unit="item", desc="grading", file=sys.stderr, disable=args.quiet) as bar:
        summary = run_batch(
            evaluator,
            grades.items,
            concurrency=args.concurrency,
            output=output,
            on_result=lambda done, total, row: bar.update(done - bar.n),
            job_id="agreement-" + default_job_id(output).removeprefix("batch-"),
        )
    report = measure_agreement(summary.rows, grades, resamples=args.resamples)
    if args.json:
        print(json.dumps({**report.to_dict(), "results": str(output)}, ensure_ascii=False, indent=2))
    else:
        print(report.text())
        if grades.errors:
            print(f"Rows without a usable human grade or answer: {len(grades.errors)} (listed above on stderr)")
        print(f"Graded rows: {output} (run the same command again to resume or reuse them)")
    return 1 if grades.errors or report.failed else 0


def cmd_runs(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """List the runs in the evaluation log, newest first."""
    from .runs import RunIndex, runs_text

    _warn_if_hub_down(evaluator)
    runs = RunIndex.from_log(evaluator.log).runs()
    print(json.dumps([r.to_dict() for r in runs], ensure_ascii=False, indent=2) if args.json else runs_text(runs))
    return 0


def _load_run(index: Any, ref: str) -> tuple[Any, list[dict[str, Any]]]:
    """A run and its item records: from the log by id, name or id prefix, or from a results file path."""
    from .runs import is_results_file, results_file_run

    if is_results_file(ref):
        return results_file_run(ref)
    run = index.get(ref)
    return run, index.items(run.id)


def cmd_compare(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Compare run B with run A item by item; with --max-drop, exit 1 when B may be worse by more than that."""
    from .compare import compare
    from .runs import RunIndex, is_results_file

    if args.max_drop is not None and args.max_drop < 0:
        raise InputError(f"--max-drop must be 0 or more points, got {args.max_drop}")
    index = None
    if not (is_results_file(args.run_a) and is_results_file(args.run_b)):
        _warn_if_hub_down(evaluator)
        index = RunIndex.from_log(evaluator.log)
    run_a, items_a = _load_run(index, args.run_a)
    run_b, items_b = _load_run(index, args.run_b)
    result = compare(run_a, items_a, run_b, items_b, force=args.force, top=args.top)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    elif args.markdown:
        print(result.markdown(), end="")
    else:
        print(result.text())
    reason = result.gate(args.max_drop) if args.max_drop is not None else None
    if reason:
        print(reason, file=sys.stderr)
        return 1
    return 0


def _warn_if_hub_down(evaluator: Evaluator) -> None:
    log = evaluator.log
    if log.hub is not None and not log.hub.wait_first_attempt(timeout=log.hub.timeout):
        print("warning: the Hub log repo is not reachable; these figures cover the local log only", file=sys.stderr)


def cmd_openai_batch_submit(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Write the Batch API request file for the answers not yet graded, upload it and create the batch."""
    from .batch_io import parse_batch
    from .openai_batch import openai_judge, requests_path, state_path, submit

    openai_judge(evaluator)  # no key: say so before reading the input
    parsed = parse_batch(Path(args.input), evaluator=evaluator, candidate=True)
    for message in parsed.errors:
        print(f"{args.input}: {message}", file=sys.stderr)
    job = submit(
        evaluator, parsed.items, args.output, job_id=args.job_id, name=args.name, input_name=Path(args.input).name
    )
    if job is None:
        print(f"Nothing to submit: all {plural(len(parsed.items), 'item')} are already graded in the log.")
    else:
        sent, done = len(job.submitted), len(job.items) - len(job.submitted)
        print(f"Submitted batch {job.batch_id} (job {job.job_id}): {sent} requests, {done} already graded.")
        print(f"Request file: {requests_path(args.output)}")
        print(f"State file: {state_path(args.output)}")
        print(f"Next: python -m evaluator openai-batch status {args.output}")
        print(f"      python -m evaluator openai-batch ingest {args.output} --wait")
    if parsed.errors:
        print(f"Malformed rows: {len(parsed.errors)} (listed above on stderr)")
    return 1 if parsed.errors else 0


def cmd_openai_batch_status(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Print the status and request counts of the batch submitted for OUTPUT."""
    from .openai_batch import TERMINAL, BatchJob, describe, poll

    job = BatchJob.load(args.output)
    batch = poll(evaluator, job)
    print(describe(batch))
    if batch.status in TERMINAL and batch.status != "failed" and not job.closed:
        print(f"Next: python -m evaluator openai-batch ingest {args.output}")
    return 0


def cmd_openai_batch_ingest(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Log the results of the batch submitted for OUTPUT and write OUTPUT (with --wait: once it has ended)."""
    from .openai_batch import BatchJob, describe, ingest, wait

    if args.wait:
        shown: list[str] = []

        def show(batch: Any) -> None:
            line = describe(batch)
            if not shown or shown[-1] != line:
                shown.append(line)
                print(line, file=sys.stderr)

        wait(evaluator, BatchJob.load(args.output), interval=args.poll_interval, on_poll=show)
    summary = ingest(evaluator, args.output)
    print(summary.text())
    if summary.failed:
        print(f"{plural(summary.failed, 'item')} failed (reasons in the results file): submit again to retry them.")
    print(f"Results: {args.output}")
    return 1 if summary.failed else 0


def cmd_stats(evaluator: Evaluator, args: argparse.Namespace) -> int:
    """Print the dashboard's figures over the whole evaluation log (local files and, when synced, the Hub's)."""

    _warn_if_hub_down(evaluator)
    data = views.dashboard_data(evaluator.log.aggregate())
    print(json.dumps(data, ensure_ascii=False, indent=2) if args.json else views.stats_text(data))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m evaluator", description=plain_help(__doc__ or ""))
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="grade one answer")
    ev.add_argument("--question-id", help="id of a question in the dataset (DATA_PATH)")
    ev.add_argument("--question", help="free-form question text (with --reference)")
    ev.add_argument("--reference", help="reference answer for a free-form question")
    ev.add_argument("--answer", required=True, help="the answer to grade")
    ev.add_argument("--json", action="store_true", help="print the evaluation record as JSON")
    ev.set_defaults(func=cmd_evaluate)

    fb = sub.add_parser("feedback", help="agree/disagree with a logged grade and comment on it")
    fb.add_argument("--evaluation-id", required=True, help="id of the evaluation in the log (printed by evaluate)")
    stance = fb.add_mutually_exclusive_group()
    stance.add_argument("--agree", dest="agree", action="store_const", const=True, help="you agree with the grade")
    stance.add_argument("--disagree", dest="agree", action="store_const", const=False, help="you disagree")
    fb.add_argument("--rating", type=int, help="your rating of the grade, 1-5")
    fb.add_argument("--comment", required=True, help="your comment (its sentiment is recorded)")
    fb.add_argument("--json", action="store_true", help="print the feedback record as JSON")
    fb.set_defaults(func=cmd_feedback)

    bt = sub.add_parser("batch", help="grade a JSONL/CSV file of answers (resumable)")
    bt.add_argument("input", help="rows with question_id (or question + reference) and answer; .jsonl or .csv")
    bt.add_argument("-o", "--output", required=True, help="results file, .jsonl or .csv (re-running resumes it)")
    bt.add_argument("--concurrency", type=int, default=8, help="judge calls in flight at most (default 8)")
    bt.add_argument(
        "--candidate-model",
        action="append",
        help="model that answers rows without an answer: an OpenAI-compatible model name or local:smollm2"
        " (default CANDIDATE_MODEL_NAME); give it twice or more for a head-to-head of those models",
    )
    bt.add_argument("--job-id", help="batch id in the log (default: derived from the output path)")
    bt.add_argument("--name", help="a name for this run, to find it with the runs and compare commands (e.g. baseline)")
    bt.add_argument(
        "--fail-under", type=float, metavar="SCORE", help="exit 1 when the run's mean score (0-10) is below SCORE"
    )
    bt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    bt.set_defaults(func=cmd_batch)

    ag = sub.add_parser("agreement", help="measure a judge against human grades (correlation, kappa, accuracy)")
    ag.add_argument(
        "input", help="rows with question_id (or question + reference), answer and human_score or label; .jsonl/.csv"
    )
    ag.add_argument("--judge", choices=("offline", "openai"), help="the judge to measure (default JUDGE_BACKEND)")
    ag.add_argument(
        "-o", "--output", help="graded rows, .jsonl or .csv (re-running resumes); default agreement-FILE-JUDGE.jsonl"
    )
    ag.add_argument("--scale", type=float, default=5.0, help="top of the human_score scale (default 5: scores 0-5)")
    ag.add_argument("--concurrency", type=int, default=8, help="judge calls in flight at most (default 8)")
    ag.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the intervals (default 1000)")
    ag.add_argument("--json", action="store_true", help="print the figures as JSON")
    ag.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ag.set_defaults(func=cmd_agreement)

    st = sub.add_parser("stats", help="the dashboard's figures over the evaluation log (LOG_PATH)")
    st.add_argument("--json", action="store_true", help="print them as JSON (what the app's /dashboard returns)")
    st.set_defaults(func=cmd_stats)

    rn = sub.add_parser("runs", help="list the batch runs in the evaluation log, newest first")
    rn.add_argument("--json", action="store_true", help="print them as JSON")
    rn.set_defaults(func=cmd_runs)

    cp = sub.add_parser("compare", help="compare two runs item by item (B against A); a CI gate with --max-drop")
    cp.add_argument("run_a", metavar="RUN_A", help="the baseline: a run id, name or id prefix, or a results file")
    cp.add_argument("run_b", metavar="RUN_B", help="the run compared with it (same forms)")
    fmt = cp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the comparison as JSON")
    fmt.add_argument("--markdown", action="store_true", help="print it as Markdown (e.g. for a pull-request comment)")
    cp.add_argument(
        "--max-drop",
        type=float,
        metavar="DELTA",
        help="exit 1 unless the 95%% interval of the mean change stays above -DELTA (points on 0-10)",
    )
    cp.add_argument("--top", type=int, default=10, help="how many of the most regressed items to show (default 10)")
    cp.add_argument(
        "--force", action="store_true", help="compare even when judges or dataset versions differ (with a warning)"
    )
    cp.set_defaults(func=cmd_compare)

    ob = sub.add_parser("openai-batch", help="grade a large file through the OpenAI Batch API (half price, 24 h)")
    obs = ob.add_subparsers(dest="action", required=True)
    ob_submit = obs.add_parser("submit", help="upload the answers not yet graded as a batch")
    ob_submit.add_argument("input", help="rows with question_id (or question + reference) and answer; .jsonl or .csv")
    ob_submit.add_argument("-o", "--output", required=True, help="results file that ingest writes, .jsonl or .csv")
    ob_submit.add_argument("--job-id", help="batch id in the log (default: derived from the output path)")
    ob_submit.add_argument("--name", help="a name for this run, to find it with the runs and compare commands")
    ob_submit.set_defaults(func=cmd_openai_batch_submit)
    ob_status = obs.add_parser("status", help="status and request counts of the batch submitted for OUTPUT")
    ob_status.add_argument("output", help="the results file given to submit")
    ob_status.set_defaults(func=cmd_openai_batch_status)
    ob_ingest = obs.add_parser("ingest", help="log the batch's results and write OUTPUT (safe to run again)")
    ob_ingest.add_argument("output", help="the results file given to submit")
    ob_ingest.add_argument("--wait", action="store_true", help="poll until the batch has ended, then ingest")
    ob_ingest.add_argument(
        "--poll-interval", type=float, default=30.0, help="seconds between polls with --wait (default 30)"
    )
    ob_ingest.set_defaults(func=cmd_openai_batch_ingest)
    for command in [*sub.choices.values(), *obs.choices.values()]:  # each command's --help: what it does
        func = command.get_default("func")
        if func is not None and func.__doc__:
            command.description = plain_help(func.__doc__)
    return parser


def plain_help(text: str) -> str:
    """A docstring as help text on a terminal: without reST roles and backticks (``x``, :func:`x` -> x)."""
    return re.sub(r"(?::[\w:]+:)?`+~?([^`]+?)`+", r"\1", text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (2 for bad input or configuration)."""
    args = build_parser().parse_args(argv)
    if not args.verbose:
        # Model-loading progress bars are noise on a terminal; the batch command keeps its own bar.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        evaluator = Evaluator(load_settings())
        try:
            return args.func(evaluator, args)
        finally:
            evaluator.close()
    except EvaluatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
