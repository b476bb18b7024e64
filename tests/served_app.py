"""The app as ``python app.py`` serves it (``create_app`` under uvicorn), in a thread on a free localhost port."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from evaluator.config import Settings
from evaluator.log import EvalLog
from evaluator.service import Evaluator
from evaluator.ui.serve import create_app, server_config


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServedApp:
    """``with ServedApp(settings) as app:`` serves the app at ``app.url`` until the block ends (``hf_api``: a Hub)."""

    def __init__(self, settings: Settings, *, hf_api: Any = None) -> None:
        log = EvalLog.from_settings(settings, hf_api=hf_api) if hf_api is not None else None
        self.evaluator = Evaluator(settings, log=log)
        self.port = free_port()
        config = server_config(
            create_app(self.evaluator),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="served-app", daemon=True)

    @property
    def url(self) -> str:
        """The app's root URL, with a trailing slash."""
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.evaluator.close()
