"""Synthetic Sentinel-2 reflectance and field layouts for the demo world (pure numpy, seeded).

Imagery is not noise: each harmonized class has a spectral signature, each region shifts it (sun angle,
phenology, soil, haze) and perturbs every class a little differently, fields are contiguous parcels with texture,
and some chips carry cloud. A model trained in one region therefore does measurably worse in another.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from curation.core.bands import S2_FILE_ORDER

S2_BANDS = S2_FILE_ORDER  # the study's file order of the 13 L1C bands

# Top-of-atmosphere-like reflectance per harmonized class, in S2_BANDS order.
SIGNATURES: dict[str, tuple[float, ...]] = {
    "maize": (0.060, 0.045, 0.075, 0.045, 0.110, 0.300, 0.390, 0.440, 0.150, 0.006, 0.210, 0.105, 0.455),
    "soybean": (0.058, 0.042, 0.080, 0.035, 0.095, 0.340, 0.450, 0.500, 0.170, 0.006, 0.230, 0.100, 0.515),
    "rice": (0.070, 0.060, 0.080, 0.050, 0.085, 0.180, 0.230, 0.260, 0.090, 0.004, 0.120, 0.060, 0.270),
    "wheat": (0.075, 0.070, 0.095, 0.115, 0.160, 0.220, 0.260, 0.280, 0.110, 0.007, 0.320, 0.230, 0.290),
    "other": (0.070, 0.055, 0.075, 0.070, 0.115, 0.220, 0.270, 0.300, 0.120, 0.006, 0.250, 0.150, 0.310),
    "ignore": (0.080, 0.075, 0.090, 0.095, 0.120, 0.170, 0.200, 0.220, 0.100, 0.006, 0.240, 0.180, 0.230),
}
SOIL = np.array([0.08, 0.10, 0.13, 0.17, 0.20, 0.22, 0.24, 0.25, 0.10, 0.005, 0.32, 0.28, 0.26])
CLOUD = np.array([0.42, 0.44, 0.45, 0.46, 0.47, 0.48, 0.48, 0.49, 0.20, 0.030, 0.36, 0.27, 0.49])
BLUE = np.array([b in ("B01", "B02") for b in S2_BANDS])


@dataclass(frozen=True)
class Look:
    """How a region shifts every signature: sun angle, phenology (mix with soil), soil tone, haze, class drift."""

    gain: float
    phenology: float
    soil: float
    haze: float
    drift: float


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale: int) -> npt.NDArray[np.float64]:
    """Zero-mean, unit-ish noise varying over about `scale` pixels (bilinear upsampling of a coarse field)."""
    height, width = shape
    coarse = rng.standard_normal((height // scale + 2, width // scale + 2))
    ys = np.arange(height) / scale
    xs = np.arange(width) / scale
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return np.asarray(top * (1 - fy) + bottom * fy, dtype=np.float64)


@dataclass(frozen=True)
class Fields:
    """Rectangular parcels in strips (rows of fields), like surveyed farmland; coordinates in any CRS units."""

    row_edges: npt.NDArray[np.float64]  # y edges, ascending
    col_edges: tuple[npt.NDArray[np.float64], ...]  # x edges per row, ascending
    offsets: npt.NDArray[np.int64]  # index of the first field of each row

    @property
    def count(self) -> int:
        """Number of fields."""
        return int(self.offsets[-1] + len(self.col_edges[-1]) - 1)

    def rectangles(self) -> list[tuple[float, float, float, float]]:
        """(minx, miny, maxx, maxy) of every field, in field order."""
        out = []
        for row, edges in enumerate(self.col_edges):
            y0, y1 = self.row_edges[row], self.row_edges[row + 1]
            out += [(float(edges[i]), float(y0), float(edges[i + 1]), float(y1)) for i in range(len(edges) - 1)]
        return out

    def index(self, xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Field index at each point (points beyond the layout clamp to the border fields)."""
        rows = np.clip(np.searchsorted(self.row_edges, ys, side="right") - 1, 0, len(self.col_edges) - 1)
        out = np.empty(xs.shape, dtype=np.int64)
        for row, edges in enumerate(self.col_edges):
            sel = rows == row
            cols = np.clip(np.searchsorted(edges, xs[sel], side="right") - 1, 0, len(edges) - 2)
            out[sel] = self.offsets[row] + cols
        return out


def strip_fields(
    rng: np.random.Generator, bounds: tuple[float, float, float, float], size: tuple[float, float]
) -> Fields:
    """Cover `bounds` with strips of parcels whose sides lie between size[0] and size[1] (CRS units)."""
    minx, miny, maxx, maxy = bounds

    def edges(low: float, high: float) -> npt.NDArray[np.float64]:
        cuts = [low]
        while cuts[-1] < high:
            cuts.append(cuts[-1] + float(rng.uniform(*size)))
        return np.array(cuts, dtype=np.float64)

    row_edges = edges(miny, maxy)
    col_edges = tuple(edges(minx, maxx) for _ in range(len(row_edges) - 1))
    counts = np.array([len(e) - 1 for e in col_edges], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    return Fields(row_edges, col_edges, offsets)


def draw_codes(rng: np.random.Generator, weights: dict[int, float], n: int) -> npt.NDArray[np.int64]:
    """`n` native codes drawn from a weighted legend."""
    codes = np.array(list(weights), dtype=np.int64)
    p = np.array(list(weights.values()), dtype=np.float64)
    return rng.choice(codes, size=n, p=p / p.sum())


def region_signatures(rng: np.random.Generator, look: Look, names: tuple[str, ...]) -> npt.NDArray[np.float64]:
    """(classes, 13) reflectance for one region: every class drifts a little differently, then the look applies."""
    table = np.empty((len(names), len(S2_BANDS)), dtype=np.float64)
    for i, name in enumerate(names):
        base = np.array(SIGNATURES.get(name, SIGNATURES["other"]))
        drift = 1 + look.drift * rng.standard_normal(len(S2_BANDS)).clip(-2, 2)
        mixed = (1 - look.phenology) * base * drift + look.phenology * SOIL * look.soil
        table[i] = mixed * look.gain + look.haze * BLUE
    return table


def synthesize(
    rng: np.random.Generator,
    classes: npt.NDArray[np.integer],
    signatures: npt.NDArray[np.float64],
    cloud_probability: float,
) -> npt.NDArray[np.uint16]:
    """A (13, H, W) uint16 L1C-like chip (reflectance x 10000) for a map of class indices into `signatures`."""
    shape = (int(classes.shape[0]), int(classes.shape[1]))
    refl = signatures[classes].transpose(2, 0, 1)  # (13, H, W)
    texture = 1 + 0.06 * smooth_noise(rng, shape, max(shape[0] // 8, 2)) + 0.03 * smooth_noise(rng, shape, 2)
    refl = refl * texture[None] * (1 + 0.02 * rng.standard_normal(refl.shape))
    if rng.random() < cloud_probability:
        alpha = np.clip(smooth_noise(rng, shape, max(shape[0] // 4, 2)) - 0.6, 0, 1)[None]
        refl = refl * (1 - alpha) + CLOUD[:, None, None] * alpha
    chip: npt.NDArray[np.uint16] = np.clip(np.rint(refl * 10000), 1, 20000).astype(np.uint16)
    return chip
