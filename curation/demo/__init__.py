"""Stage `demo`: the synthetic world in every source's native layout (`python -m curation.demo`)."""
