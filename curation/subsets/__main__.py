"""`python -m curation.subsets` runs the stage (as dvc.yaml does)."""

from curation.subsets.stage import main

main()
