"""`python -m curation.validate` runs the stage (as dvc.yaml does)."""

from curation.validate.stage import main

main()
