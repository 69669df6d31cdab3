"""Machine-readable metadata of a release: Croissant JSON-LD and a STAC catalogue, each with its validation.

`publish` calls `write_croissant` and `write_stac` once the data files are in the release folder (both read them),
before SHA256SUMS is written over everything. The `*_problems` functions validate offline and return [] when the
metadata is valid; the `*_class_counts` functions read the counts back through mlcroissant and pystac, which is what
the tests compare with class_counts.csv and the manifest.

The code lives in croissant.py, stac.py and stac_checks.py; this module is the interface the stage and tests import.
"""

from __future__ import annotations

from curation.publish.croissant import croissant_class_counts, croissant_problems, write_croissant
from curation.publish.stac import write_stac
from curation.publish.stac_checks import stac_class_counts, stac_problems

__all__ = [
    "croissant_class_counts",
    "croissant_problems",
    "stac_class_counts",
    "stac_problems",
    "write_croissant",
    "write_stac",
]
