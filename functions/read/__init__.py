"""The read side: every figure the dashboard, API, report and CLI show (no web framework here)."""
