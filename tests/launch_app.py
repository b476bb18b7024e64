"""``python -m tests.launch_app``: run ``app.main()`` as ``python app.py`` does, with the Hub played by a fake.

Tests that stop the real process (SIGTERM, SIGINT) start it this way: the fake HfApi of ``tests/test_hub.py``
also writes every committed file under ``$FAKE_HUB_DIR``, so the test process can read what was pushed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from tests.test_hub import FakeHfApi


class DiskHub(FakeHfApi):
    """A :class:`FakeHfApi` that mirrors each repo's committed files to ``folder/<path in repo>``."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def create_commit(self, repo_id: str, operations: list[Any], *, commit_message: str, **kwargs: Any) -> Any:
        info = super().create_commit(repo_id, operations, commit_message=commit_message, **kwargs)
        for path, data in self.repos[repo_id].items():
            target = self.folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return info


def main() -> int:
    """Install the fake Hub (when ``FAKE_HUB_DIR`` is set) and run the app."""
    if os.environ.get("FAKE_HUB_DIR"):
        import evaluator.hub

        hub = DiskHub(Path(os.environ["FAKE_HUB_DIR"]))
        evaluator.hub.HfApi = lambda token=None: hub  # type: ignore[assignment,misc]
    import app

    return app.main()


if __name__ == "__main__":
    sys.exit(main())
