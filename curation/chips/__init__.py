"""Stage `chips`: a harmonized label chip on every image chip's grid, and the manifest (`python -m curation.chips`)."""
