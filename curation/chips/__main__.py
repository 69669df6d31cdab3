"""`python -m curation.chips` runs the stage (as dvc.yaml does)."""

from curation.chips.stage import main

main()
