"""The band order of a 13-band Sentinel-2 chip, shared by readers, stages, training and the app."""

from __future__ import annotations

S2_FILE_ORDER: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)  # fmt: skip
"""The study's band order of a 13-band Sentinel-2 chip (its file order: B01..B12, then B8A)."""
