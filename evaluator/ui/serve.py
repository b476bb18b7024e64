"""Serving the app: :func:`create_app` (FastAPI with ``/healthz``, the guards and the mounted UI) and :func:`main`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import gradio as gr

from ..config import load_settings
from ..errors import EvaluatorError
from ..limits import CostLimits
from ..server import BodyLimit, ClientAddress, LoginThrottle, bound_sessions, public_health
from ..service import Evaluator
from ..shutdown import close_within, signals_interrupt
from . import build_demo
from .common import MAX_UPLOAD_BYTES

STYLE = Path(__file__).with_name("style.css")

logger = logging.getLogger("evaluator.ui.serve")


def create_app(evaluator: Evaluator) -> Any:
    """A FastAPI app serving the UI at ``/`` (behind APP_USERNAME/APP_PASSWORD when set) and ``/healthz``.

    Every request passes the guards of :mod:`evaluator.server`: client address from trusted proxies only,
    a request body cap, and login throttling.
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    settings = evaluator.settings
    limits = CostLimits.from_settings(settings)
    app = FastAPI(title="LLM Evaluator Chatbot", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Liveness, status and the owner's limits for load balancers; open without login, never shows secrets."""
        try:
            return JSONResponse(public_health(evaluator.health(), limits.status()))
        except EvaluatorError:
            logger.exception("/healthz failed")
            return JSONResponse({"status": "error"}, status_code=503)

    # The last added is the outermost: the client's address is known before anything counts it.
    app.add_middleware(LoginThrottle, per_minute=settings.login_attempts_per_minute)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, upload_bytes=MAX_UPLOAD_BYTES + 65536)
    app.add_middleware(ClientAddress, hops=settings.trusted_proxy_hops)
    auth = (settings.app_username, settings.app_password) if settings.app_username and settings.app_password else None
    demo = build_demo(evaluator, limits)
    mounted = gr.mount_gradio_app(
        app,
        demo,
        path="/",
        auth=auth,
        auth_message="Log in to the LLM Evaluator." if auth else None,
        max_file_size=MAX_UPLOAD_BYTES,
        footer_links=["api", "gradio"],
        ssr_mode=False,  # server-side rendering needs Node; the client-rendered UI needs nothing extra
        css_paths=[STYLE],
    )
    bound_sessions(demo)  # after mounting, which creates the session store: API calls do not pile up sessions
    return mounted


def server_config(app: Any, *, host: str, port: int, **options: Any) -> Any:
    """The ``uvicorn.Config`` the app is served with (``options`` override, e.g. ``log_level``)."""
    import uvicorn

    values: dict[str, Any] = {
        "proxy_headers": False,  # evaluator.server.ClientAddress trusts only the owner's proxy hops
        "timeout_graceful_shutdown": 5,  # open event streams would otherwise hold a restart forever
        "log_level": "info",
    }
    values.update(options)
    return uvicorn.Config(app, host=host, port=port, **values)


def main() -> int:
    """Load settings, build the evaluator and serve the app on its host and port; exit code 2 on bad configuration.

    SIGTERM and SIGINT stop the server gracefully, then the log is flushed and pushed (``SHUTDOWN_TIMEOUT_SECONDS``).
    """
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        evaluator = Evaluator(settings)
        evaluator.dataset  # a bad DATA_PATH is a startup error, not a broken page  # noqa: B018
        evaluator.log.ensure_writable()  # nor is a LOG_PATH that cannot be written
        app = create_app(evaluator)
    except EvaluatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    config = server_config(app, host=settings.gradio_server_name, port=settings.gradio_server_port)
    try:
        with signals_interrupt():
            uvicorn.Server(config).run()
    except KeyboardInterrupt as stop:
        logger.info("Stopping (%s): writing and pushing the evaluation log", stop or "SIGINT")
    finally:
        close_within(evaluator.close, settings.shutdown_timeout_seconds)
    return 0
