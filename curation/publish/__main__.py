"""`python -m curation.publish` runs the stage (as dvc.yaml does)."""

from curation.publish.stage import main

main()
