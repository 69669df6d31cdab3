"""Stage `publish`: a versioned release with its card and metadata (`python -m curation.publish`)."""
