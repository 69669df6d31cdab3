"""`python -m curation.cli`."""

from curation.cli.commands import app

app()
