"""Stage `crosswalks`: validate the crosswalk sets and compare them (`python -m curation.crosswalks`)."""
