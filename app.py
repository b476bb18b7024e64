"""The Space entry point: ``python app.py`` serves the LLM Evaluator (UI, JSON API and ``/healthz``).

The app itself is the package :mod:`evaluator.ui` (one module per tab); see docs/architecture.md.
"""

import sys

from evaluator.ui.serve import main

if __name__ == "__main__":
    sys.exit(main())
