"""`python -m curation.crosswalks` runs the stage (as dvc.yaml does)."""

from curation.crosswalks.stage import main

main()
