"""Chips: a gallery filtered by source, subset and class, and one chip's detail.

The detail: the picture beside its label, class shares, where the chip lies, its subsets, the validation warnings
about it.

The filters and the open chip follow the page's query parameters (`?source=cdl&subset=train 4&contains=maize`,
`?chip=<chip_id>`): the Class balance and Validation pages link here that way, and the address names what is shown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl
import rasterio.errors
import streamlit as st

from app.artifacts import CorruptArtifact
from app.queries.balance import ALL_CHIPS, scoped
from app.queries.chips import caption, chip_location, chip_shares, chip_subsets, chip_warnings, filter_chips, pages
from app.queries.order import source_order
from app.queries.overview import subset_order
from app.render import label_overlay, palette, read_labels, rgb_composite, side_by_side
from app.views.common import artifacts, class_colors, class_names, corrupt, crosswalk_set, guard, optional, table
from app.views.tables import show

PER_PAGE = 12
COLUMNS = 4
ANY = "(any)"
DETAIL_PX = 420  # the detail's picture is scaled up (nearest pixel) to about this width
FILTERS = {"source": "chips_source", "subset": "chips_subset", "contains": "chips_contains"}  # query -> widget key


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


def seed(key: str, value: str | None, options: list[str]) -> None:
    """Start a filter at the query parameter's value when the page is opened (a link), then leave it to the user."""
    if key not in st.session_state and value in options:
        st.session_state[key] = value


def chip_pictures(row: dict[str, object]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """A manifest row's composite and label overlay."""
    return pictures(
        str(project.chips / str(row["image_path"])),
        str(project.chips / str(row["label_path"])),
        project.bands,
        taxonomy.ids,
        taxonomy.colors,
    )


def open_detail(chip_id: str) -> None:
    """A card's Details button: open that chip above the gallery."""
    st.session_state["chips_open"] = chip_id


def detail(row: dict[str, object]) -> None:
    """One chip, large: composite beside label, class shares, location, subsets, validation warnings."""
    chip_id, source = str(row["chip_id"]), str(row["source"])
    with st.container(border=True):
        head, close = st.columns([5, 1])
        head.subheader(f"Chip {chip_id}")
        if close.button("Close", icon=":material/close:", key="chips_close"):
            st.session_state["chips_open"] = st.session_state["chips_asked"] = None
            st.query_params.pop("chip", None)
            st.rerun()
        left, right = st.columns([3, 2])
        try:
            rgb, overlay = chip_pictures(row)
            scale = max(1, DETAIL_PX // max(rgb.shape[1], 1))
            left.image(side_by_side(rgb, overlay, gap=2, scale=scale), caption="RGB (B04, B03, B02) · labels")
        except CorruptArtifact as exc:
            with left:
                corrupt(exc)
        with right:
            st.markdown(f"**{source}** · dominant class **{row['dominant']}**")
            show(chip_shares(row, classes))
            belongs = chip_subsets(subsets, source, chip_id)
            st.markdown("**Subsets**: " + (", ".join(f"`{s}`" for s in belongs) if belongs else "none"))
        show(chip_location(row))
        warnings = chip_warnings(failures, manifest, source, chip_id)
        if warnings.is_empty():
            st.caption("No validation error or warning about this chip.")
        else:
            st.markdown(f"**Validation: {warnings.height} finding(s)**")
            show(warnings)


st.title("Chips")
project = artifacts()
manifest = guard(lambda: table(project.manifest()))
subsets = optional(project.subset_lists())
failures = optional(project.failures())
classes, colors = class_names(project), class_colors(project)
taxonomy = crosswalk_set(project).taxonomy
order = source_order(project.sources, manifest["source"].unique().to_list())

source_options = [ANY, *order]
subset_options = [ALL_CHIPS, *(subset_order(subsets) if subsets is not None else [])]
class_options = [ANY, *[c for c in classes if c != "ignore"]]
for name, options in (("source", source_options), ("subset", subset_options), ("contains", class_options)):
    seed(FILTERS[name], st.query_params.get(name), options)
asked_chip = st.query_params.get("chip")
if asked_chip and asked_chip != st.session_state.get("chips_asked"):  # a link to a chip: open it once
    st.session_state["chips_open"] = st.session_state["chips_asked"] = asked_chip

left, middle, right = st.columns(3)
source = str(left.selectbox("Source", source_options, key=FILTERS["source"]))
subset = str(middle.selectbox("Subset", subset_options, key=FILTERS["subset"]))
contains = str(right.selectbox("Contains class", class_options, key=FILTERS["contains"]))
st.query_params.update({"source": source, "subset": subset, "contains": contains})

opened = st.session_state.get("chips_open")
if opened:
    found = manifest.filter(pl.col("chip_id") == opened)
    if found.is_empty():
        st.warning(f"No chip `{opened}` in the manifest.")
    else:
        st.query_params["chip"] = str(opened)
        detail(found.row(0, named=True))

chosen = filter_chips(
    scoped(manifest, subsets),
    classes,
    source=None if source == ANY else source,
    subset=subset,
    contains=None if contains == ANY else contains,
    min_share=project.min_class_share,
)
st.markdown(
    f"**{chosen.height:,} chips** · "
    + " ".join(f'<span style="color:{colors[c]}">■</span> {c}' for c in classes if c != "ignore")
    + " · ignore: dimmed picture",
    unsafe_allow_html=True,
)
if chosen.is_empty():
    st.info("No chip matches these filters.")
    st.stop()
total = pages(chosen.height, PER_PAGE)
number = st.pagination(total, key="chips_page") if total > 1 else 1
number = min(int(number), total)
st.caption(f"Page {number} of {total} · chips {(number - 1) * PER_PAGE + 1}-{min(number * PER_PAGE, chosen.height)}")
shown = chosen.slice((number - 1) * PER_PAGE, PER_PAGE)
grid = st.columns(COLUMNS)
for i, row in enumerate(shown.iter_rows(named=True)):
    with grid[i % COLUMNS].container(border=True):
        try:
            rgb, overlay = chip_pictures(row)
            scale = max(1, 128 // max(rgb.shape[1], 1))
            st.image(side_by_side(rgb, overlay, gap=2, scale=scale), width="stretch")
        except CorruptArtifact as exc:  # one unreadable chip: the others still show
            corrupt(exc)
        st.caption(f"{row['source']} · {caption(row, classes)}")
        st.button("Details", key=f"open-{row['source']}-{row['chip_id']}", on_click=open_detail, args=(row["chip_id"],))
