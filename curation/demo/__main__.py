"""`python -m curation.demo` runs the stage (as dvc.yaml does)."""

from curation.demo.stage import main

main()
