"""Every file the readers find under a source's folders and do not use, with the reason: nothing dropped silently.

validate and chips put these rows in their reports as warnings (rule "unused file").

A source's label product is read once per label year of its chips (`chip_refs.scan_chips`: the `<year>_` prefix
of each chip's name, else the source's `year` param), so a file is unused when no reader of those years reads it:
a CDL root holding 2017 to 2023 under chips of 2023 reports the other six years, and a EuroCrops layer without a
year in its name (Romania's `RO_ny`) is reported when every chip names its year. When the chips cannot be listed
(the reports name that error) the source's `year` param stands in for them. Image chip folders are listed by
`chip_refs`, not here; a label root that does not exist is the readers' error, not a row here.
"""

from __future__ import annotations

from pathlib import Path

from curation.core.errors import CropharmonyError, Problem
from curation.core.legends import unlisted_crosswalks
from curation.core.shared import SharedParams
from curation.inputs.chip_refs import SourceInput, reader, scan_chips, source_inputs

YEAR_REASON = "read only for chips of"  # how readers word a file of another year (curation/sources/*.py)


def unused_inputs(shared: SharedParams) -> list[Problem]:
    """Files found and not used (label products, crosswalk CSVs), sorted by file."""
    rows = [row for source in source_inputs(shared) for row in source_unused(source)]
    rows += unlisted_crosswalks(shared.legends_dir)
    return sorted(set(rows), key=lambda p: (p.file, p.detail))


def read_years(source: SourceInput) -> list[int | None]:
    """The label years the chips of a source read (the source's `year` param when its chips cannot be listed)."""
    try:
        years = sorted({ref.year for ref in scan_chips(source).refs})
    except CropharmonyError:
        return [source.year]
    return list(years) if years else [source.year]


def source_unused(source: SourceInput) -> list[Problem]:
    """The files under a source's label root that no reader of its chips' years reads, with the first one's reason."""
    years = read_years(source)
    found: dict[str, Problem] | None = None
    for year in years:
        try:
            unused = {row.file: row for row in reader(source, year).unused_files()}
        except CropharmonyError:
            return []  # the root is missing or unreadable: the reads report it
        found = unused if found is None else {file: row for file, row in found.items() if file in unused}
    if not found:
        return []
    images = source.images
    kept = [row for row in found.values() if images is None or images not in Path(row.file).parents]
    chips_of = ", ".join(str(y) for y in years if y is not None)
    return [_with_years(row, chips_of) for row in kept]


def _with_years(row: Problem, chips_of: str) -> Problem:
    """A row about another year's file, told which years the chips are of."""
    if not chips_of or YEAR_REASON not in row.detail:
        return row
    return Problem(row.file, row.rule, f"{row.detail} (the chips are of {chips_of})", row.fix)
