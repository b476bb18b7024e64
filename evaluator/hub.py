"""Persistence of the evaluation log in a Hugging Face dataset repo, with ``huggingface_hub.CommitScheduler``.

The pattern of huggingface_hub's "Scheduled uploads" guide: each process appends to its own
``logs/evaluations-<uuid4>.jsonl`` (so replicas and restarts never overwrite each other), appends happen under
the scheduler's lock, and the scheduler commits changed files every ``HF_PUSH_EVERY_MINUTES``. A failed commit
is retried at the next tick: the scheduler only marks a file uploaded once its commit succeeded. At start the
repo's log files are pulled into a local copy so that history survives a Space restart.

A file whose writer died before its last push (a kill, a crash) is adopted by the next process that starts on the
same disk: each writer holds an ``flock`` on ``<file>.lock`` while it lives, and only files whose lock is free
are adopted, so no process ever pushes a file that another live process is still appending to.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from huggingface_hub import CommitScheduler, HfApi

from .errors import LogError
from .models import utc_now
from .pii import scrub_pii
from .redact import redact

logger = logging.getLogger(__name__)

FILE_PREFIX = "evaluations-"


def _describe(exc: BaseException, token: str | None) -> str:
    """A short, secret-free description of an exception for logs and ``/healthz``."""
    return scrub_pii(redact(f"{type(exc).__name__}: {exc}", token))[:300]


class _Scheduler(CommitScheduler):
    """A CommitScheduler that records its last push and never lets a raw Hub error (or a token) reach the logs."""

    last_push: str | None = None
    last_error: str | None = None

    def push_to_hub(self) -> Any:
        """Push changed files (see ``CommitScheduler.push_to_hub``); a failure raises :class:`LogError`."""
        try:
            info = super().push_to_hub()
        except Exception as exc:
            self.last_error = _describe(exc, self.token)
            # The scheduler logs str() of what we raise: keep it redacted, and drop the original's message.
            raise LogError(f"push to {self.repo_id} failed ({self.last_error}); retried at the next interval") from None
        self.last_error = None
        if info is not None:
            self.last_push = utc_now()
        return info


class HubSync:
    """Keeps the evaluation log's per-process files in sync with a Hub dataset repo.

    Nothing touches the network until :meth:`start`, which returns at once: the connection (repo creation,
    pull of existing log files, scheduler start) runs in a background thread and is retried every
    ``every_minutes`` while the Hub is unreachable; the local log keeps working meanwhile.

    Args:
        repo_id: the dataset repo (``HF_LOG_REPO``); created private if it does not exist.
        token: a write token (``HF_TOKEN``); never logged.
        folder: the local folder of per-process files (pushed to ``path_in_repo``).
        mirror: where the repo's files are pulled (same tree as the repo: ``mirror/logs/...``).
        path_in_repo: the repo folder holding log files.
        every_minutes: minutes between scheduled pushes (``HF_PUSH_EVERY_MINUTES``).
        hf_api: the Hub client; ``HfApi(token=token)`` by default.
        timeout: seconds ``close()`` waits for the connection thread and for the last push.

    Example:
        >>> sync = HubSync(repo_id="me/eval-log", token=token, folder=Path("data/logs"), mirror=Path("data/hub"))
        >>> sync.start()  # doctest: +SKIP
        >>> with sync.lock:  # append to sync.write_path  # doctest: +SKIP
        ...     ...
        >>> sync.close()  # last push  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        repo_id: str,
        token: str,
        folder: Path,
        mirror: Path,
        path_in_repo: str = "logs",
        every_minutes: float = 5.0,
        hf_api: HfApi | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not every_minutes > 0:
            raise ValueError(f"every_minutes must be positive, got {every_minutes!r}")
        self.repo_id = repo_id
        self._token = token
        self.folder = Path(folder)
        self.mirror = Path(mirror)
        self.path_in_repo = path_in_repo.strip("/")
        self.every_minutes = every_minutes
        self.timeout = timeout
        self._api = hf_api
        self.write_path = self.folder / f"{FILE_PREFIX}{uuid.uuid4().hex}.jsonl"
        self.adopted: list[Path] = []  # files of dead processes this one pushes too
        self._lock_fds: list[tuple[int, Path]] = []
        self._lock = threading.Lock()
        self._scheduler: _Scheduler | None = None
        self._pulled = 0
        self._last_error: str | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._tried = threading.Event()  # the first connection attempt has ended, however it went
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"HubSync(repo_id={self.repo_id!r}, write_path={str(self.write_path)!r})"

    @property
    def lock(self) -> threading.Lock:
        """Hold it while appending: the scheduler lists files (and their sizes) under the same lock."""
        return self._scheduler.lock if self._scheduler is not None else self._lock

    def start(self) -> None:
        """Claim this process's file (and dead processes' files), then connect in the background."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._claim(self.write_path)
        for path in sorted(self.folder.glob(f"{FILE_PREFIX}*.jsonl")):
            if path != self.write_path and self._claim(path):
                self.adopted.append(path)
        if self.adopted:
            logger.info("Adopted %d log file(s) left by earlier processes", len(self.adopted))
        self._thread = threading.Thread(target=self._run, name="hub-log-sync", daemon=True)
        self._thread.start()

    def _claim(self, path: Path) -> bool:
        """Lock ``path``'s lock file for the life of this process; False if a live process holds it."""
        lock_path = path.with_name(path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fds.append((fd, lock_path))
        return True

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the repo was reached, pulled and the scheduler started; False on timeout."""
        return self._ready.wait(timeout)

    def wait_first_attempt(self, timeout: float | None = None) -> bool:
        """Wait for the first connection attempt to end; True if it reached the repo (False: it failed, or timeout)."""
        self._tried.wait(timeout)
        return self._ready.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._connect()
            except Exception as exc:
                self._last_error = _describe(exc, self._token)
                logger.warning(
                    "Hub dataset repo %s unreachable (%s). Evaluations are still logged locally to %s; "
                    "Hub sync is retried every %g minute(s).",
                    self.repo_id,
                    self._last_error,
                    self.write_path,
                    self.every_minutes,
                )
            else:
                self._last_error = None
                if self._scheduler is not None:
                    self._ready.set()
                return
            finally:
                self._tried.set()
            self._stop.wait(self.every_minutes * 60)

    def _connect(self) -> None:
        """Create the repo if needed, pull its log files, start the scheduler."""
        if self._api is None:
            self._api = HfApi(token=self._token)
        api = self._api
        api.create_repo(self.repo_id, repo_type="dataset", private=True, exist_ok=True)
        prefix = f"{self.path_in_repo}/"
        remote = {
            entry.path: entry.size
            for entry in api.list_repo_tree(self.repo_id, repo_type="dataset", recursive=True)
            if entry.path.startswith(prefix)
            and entry.path.endswith(".jsonl")
            and getattr(entry, "size", None) is not None
        }
        mine = {self.write_path.name, *(p.name for p in self.adopted)}
        for path_in_repo, size in sorted(remote.items()):
            name = PurePosixPath(path_in_repo).name
            local = self.mirror / path_in_repo
            # Files only grow, so an equal size means an equal file; our own files are newer here than there.
            if name in mine or (local.is_file() and local.stat().st_size == size):
                continue
            api.hf_hub_download(self.repo_id, path_in_repo, repo_type="dataset", local_dir=self.mirror)
            self._pulled += 1
        # Adopted files the repo already holds whole need no push.
        push = [self.write_path.name] + [
            p.name for p in self.adopted if remote.get(prefix + p.name) != p.stat().st_size
        ]
        if self._stop.is_set():
            return
        self._scheduler = _Scheduler(
            repo_id=self.repo_id,
            repo_type="dataset",
            folder_path=self.folder,
            path_in_repo=self.path_in_repo,
            every=self.every_minutes,
            token=self._token,
            private=True,
            allow_patterns=push,
            hf_api=api,
        )
        logger.info("Evaluation log synced with Hub dataset repo %s (%d file(s) pulled)", self.repo_id, self._pulled)

    def push(self, timeout: float | None = None) -> bool:
        """Push changed files now and wait; False if not connected yet or the push failed (retried later)."""
        scheduler = self._scheduler
        if scheduler is None:
            return False
        try:
            scheduler.trigger().result(timeout if timeout is not None else self.timeout)
        except Exception:  # already logged by the scheduler, redacted
            return False
        return True

    def status(self) -> dict[str, Any]:
        """Sync health for ``/healthz`` (no secret)."""
        scheduler = self._scheduler
        return {
            "repo": self.repo_id,
            "file": self.write_path.name,
            "connected": scheduler is not None,
            "pulled_files": self._pulled,
            "adopted_files": len(self.adopted),
            "every_minutes": self.every_minutes,
            "last_push": scheduler.last_push if scheduler else None,
            "last_error": (scheduler.last_error if scheduler else None) or self._last_error,
        }

    def close(self) -> None:
        """Stop retrying, make the last push, release the file locks. Records that could not be pushed stay local."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout)
        scheduler = self._scheduler
        if scheduler is not None:
            if not self.push():
                logger.warning(
                    "Last push to %s failed; %s keeps the records and the next start on this disk pushes them.",
                    self.repo_id,
                    self.write_path,
                )
            scheduler.stop()
        elif self._thread is not None:
            logger.warning("Hub repo %s was never reached; the records stay in %s.", self.repo_id, self.write_path)
        for fd, lock_path in self._lock_fds:
            # Safe to unlink while holding the lock: the file it guards is never appended to again.
            lock_path.unlink(missing_ok=True)
            os.close(fd)
        self._lock_fds = []
