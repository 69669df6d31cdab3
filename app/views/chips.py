"""Chips: a gallery filtered by source, subset and class, each chip's RGB composite beside its label overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio.errors
import streamlit as st

from app.artifacts import CorruptArtifact
from app.queries.balance import ALL_CHIPS, scoped
from app.queries.chips import caption, filter_chips
from app.queries.overview import subset_order
from app.render import label_overlay, palette, read_labels, rgb_composite
from app.views.common import artifacts, class_colors, class_names, corrupt, crosswalk_set, guard, optional, table

PER_PAGE = 8
ANY = "(any)"


@st.cache_data(show_spinner=False, max_entries=256)
def pictures(
    image: str, label: str, bands: tuple[str, ...], ids: tuple[int, ...], colors: tuple[str, ...]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The RGB composite and the label overlay of one chip (cached per file); CorruptArtifact names a bad file."""
    try:
        rgb = rgb_composite(Path(image), bands)
    except (OSError, ValueError, rasterio.errors.RasterioError) as error:
        raise CorruptArtifact(Path(image), "chips", error) from error
    try:
        labels = read_labels(Path(label))
    except (OSError, ValueError, rasterio.errors.RasterioError) as error:
        raise CorruptArtifact(Path(label), "chips", error) from error
    return rgb, label_overlay(rgb, labels, palette(ids, colors))


st.title("Chips")
project = artifacts()
manifest = guard(lambda: table(project.manifest()))
subsets = optional(project.subset_lists())
classes, colors = class_names(project), class_colors(project)
taxonomy = crosswalk_set(project).taxonomy

left, middle, right = st.columns(3)
source = left.selectbox("Source", [ANY, *sorted(manifest["source"].unique().to_list())])
subset = middle.selectbox("Subset", [ALL_CHIPS, *(subset_order(subsets) if subsets is not None else [])])
contains = right.selectbox("Contains class", [ANY, *[c for c in classes if c != "ignore"]])
chosen = filter_chips(
    scoped(manifest, subsets),
    classes,
    source=None if source == ANY else source,
    subset=subset,
    contains=None if contains == ANY else contains,
    min_share=project.min_class_share,
)
pages = max(1, -(-chosen.height // PER_PAGE))
st.markdown(
    f"**{chosen.height} chips** · "
    + " ".join(f'<span style="color:{colors[c]}">■</span> {c}' for c in classes if c != "ignore")
    + " · ignore: dimmed picture",
    unsafe_allow_html=True,
)
if chosen.is_empty():
    st.info("No chip matches these filters.")
    st.stop()
number = st.number_input("Page", min_value=1, max_value=pages, value=1, step=1) if pages > 1 else 1
shown = chosen.slice((int(number) - 1) * PER_PAGE, PER_PAGE)
grid = st.columns(2)
for i, row in enumerate(shown.iter_rows(named=True)):
    with grid[i % 2].container(border=True):
        try:
            rgb, overlay = pictures(
                str(project.chips / row["image_path"]),
                str(project.chips / row["label_path"]),
                project.bands,
                taxonomy.ids,
                taxonomy.colors,
            )
            st.image([rgb, overlay], caption=["RGB (B04, B03, B02)", "labels"], width=180)
        except CorruptArtifact as exc:  # one unreadable chip: the others still show
            corrupt(exc)
        st.caption(f"{row['source']} · {caption(row, classes)}")
