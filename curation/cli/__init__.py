"""The `cropharmony` command line."""

from curation.cli.commands import app

__all__ = ["app"]
