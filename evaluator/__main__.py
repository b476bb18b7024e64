"""``python -m evaluator``."""

from .cli import main

raise SystemExit(main())
