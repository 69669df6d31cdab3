"""Per-source arrays of the `subsets` stage: chip footprints in one metric frame, class presence, the sets chosen.

Metric frame: chips of one source may lie in several CRSs (UTM zones, Web Mercator), so each source gets one frame,
a spherical azimuthal equidistant projection centred on the median chip centroid, and each chip's footprint is the
quadrilateral of its four projected corners (`curation.subsets.splits` says why not its bounding box). Corners suffice:
an edge along a parallel bows by its length squared over 8 R / tan(lat), about 6 cm for a 2.5 km chip at 40 N.
Spherical rather than ellipsoidal: PROJ's ellipsoidal aeqd solves a geodesic per point (5x slower at 10^6 chips)
for a difference under 0.6 %; both stretch distances away from the centre alike (0.1 % at 500 km, 3 % at 2500 km),
so `buffer_m` is a margin, not a surveyed distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
from pyproj import Transformer

from curation.core.schemas import class_column
from curation.subsets import splits
from curation.subsets.splits import Index, Mask, Quads

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
IGNORE = "ignore"


@dataclass(frozen=True)
class SourceChips:
    """One source's chips, sorted by chip id so the row order of the manifest does not matter."""

    source: str
    ids: pl.Series
    quads: Quads  # (N, 4, 2) footprint corners in the source's metric frame
    pixels: npt.NDArray[np.int64]  # (N, C) pixel counts per class, ignore included
    presence: Mask  # (N, C); the ignore column is always False
    frame: str


@dataclass(frozen=True)
class Sets:
    """Row indices of a source's sets, in selection order."""

    test: Index
    train: dict[int, Index]
    test_random: Index | None = None  # None: subsets.random_test_size is 0


def metric_frame(lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> str:
    """The source's metric frame: spherical azimuthal equidistant, centred on the median centroid."""
    lon_0, lat_0 = float(np.median(lon)), float(np.median(lat))
    return f"+proj=aeqd +lat_0={lat_0:.6f} +lon_0={lon_0:.6f} +R={EARTH_RADIUS_M} +units=m +no_defs +type=crs"


def footprints(rows: pl.DataFrame, frame: str) -> Quads:
    """Each chip's four corners, from its own CRS into `frame`, in order around the chip."""
    quads = np.empty((rows.height, 4, 2), dtype=np.float64)
    crs = rows["crs"]
    for name in crs.unique().sort().to_list():
        part = rows.filter(crs == name)
        minx, miny, maxx, maxy = (part[c].to_numpy() for c in ("minx", "miny", "maxx", "maxy"))
        xs, ys = np.stack([minx, maxx, maxx, minx], axis=1), np.stack([miny, miny, maxy, maxy], axis=1)
        Transformer.from_crs(name, frame, always_xy=True).transform(xs.reshape(-1), ys.reshape(-1), inplace=True)
        quads[(crs == name).to_numpy()] = np.stack([xs, ys], axis=-1)
    return quads


def source_chips(rows: pl.DataFrame, classes: list[str], min_share: float) -> SourceChips:
    """Arrays of one source's rows (already sorted by chip id)."""
    frame = metric_frame(rows["lon"].to_numpy(), rows["lat"].to_numpy())
    pixels = rows.select([class_column(c) for c in classes]).to_numpy().astype(np.int64)
    area = (rows["height"] * rows["width"]).to_numpy().astype(np.int64)
    presence = splits.contains(pixels, area, min_share)
    presence[:, [c == IGNORE for c in classes]] = False
    return SourceChips(rows["source"][0], rows["chip_id"], footprints(rows, frame), pixels, presence, frame)
