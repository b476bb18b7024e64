"""The app's UI parts, one module per tab (built inside the caller's Blocks)."""
