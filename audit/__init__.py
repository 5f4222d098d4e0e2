"""The quarterly access audit (engine and reports).

Empty until the audit issue lands; it reads the decision log and usage tables through its own
queries and never imports ``app`` (an import-linter contract in pyproject.toml keeps it so).
"""
