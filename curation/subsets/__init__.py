"""Stage `subsets`: nested, stratified, spatially blocked train and test sets (`python -m curation.subsets`)."""
