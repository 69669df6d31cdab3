"""Stage `validate`: every source's labels and image chips against their schemas (`python -m curation.validate`)."""
