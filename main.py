"""Cloud Functions entry points and the command line (`python main.py --help`)."""

from __future__ import annotations

if __name__ == "__main__":
    from functions.cli import cli

    cli()
