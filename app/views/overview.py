"""Overview: where the chips are (offline maps: no basemap fetched), counts per source and subset, the sources."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pydeck as pdk  # type: ignore[import-untyped]
import streamlit as st

from app.queries.order import by_source, source_order
from app.queries.overview import (
    SPLIT_COLORS,
    chip_footprints,
    counts_per_source,
    crosswalk_sets,
    fit_view,
    source_centres,
    source_palette,
    subset_order,
)
from app.views.common import absent, artifacts, crosswalk_set, guard, optional, table
from app.views.tables import csv_button, show
from curation.core.registry import registry_rows

GRATICULE = [  # meridians and parallels every 30 degrees: a frame of reference without any map tiles
    *[{"path": [[lon, -80.0], [lon, 80.0]]} for lon in range(-180, 181, 30)],
    *[{"path": [[-180.0, lat], [180.0, lat]]} for lat in range(-60, 61, 30)],
]


def deck(layers: list[pdk.Layer], view: dict[str, float], tooltip: str) -> pdk.Deck:
    """A map with no basemap: nothing is fetched from the internet.

    `map_provider=None` and pydeck's own `__MAP_STYLE__` placeholder: Streamlit drops the placeholder and adds no
    tiles (an explicit `map_style=None` would make it fetch Carto's, following the theme).
    """
    grid = pdk.Layer("PathLayer", GRATICULE, get_path="path", get_color=[190, 190, 190, 120], width_min_pixels=1)
    return pdk.Deck(
        layers=[grid, *layers],
        initial_view_state=pdk.ViewState(**view),
        map_provider=None,
        tooltip={"text": tooltip},
    )


st.title("Overview")
project = artifacts()
manifest = guard(lambda: table(project.manifest()))
subsets = optional(project.subset_lists())
order = source_order(project.sources, manifest["source"].unique().to_list())

used = crosswalk_sets(manifest)
left, middle, right, last = st.columns(4)
left.metric("Sources", manifest["source"].n_unique())
middle.metric("Chips", f"{manifest.height:,}")
right.metric("Crosswalk set", ", ".join(used))
last.metric("Subsets per source", len(subset_order(subsets)) if subsets is not None else 0)
if used != [project.crosswalk_set]:
    st.warning(
        f"The chips were cut with crosswalk set {', '.join(used)} but params.yaml selects "
        f"`{project.crosswalk_set}`: run `uv run dvc repro chips` to cut them again."
    )

palette = source_palette(order)
st.subheader("Where the chips are")
world, local = st.columns(2)
centres = by_source(source_centres(manifest, palette), order)
with world:
    st.pydeck_chart(
        deck(
            [
                pdk.Layer(
                    "ScatterplotLayer", centres.to_dicts(), get_position="[lon, lat]", get_fill_color="fill",
                    get_radius=250_000, radius_min_pixels=7, pickable=True,
                ),
                pdk.Layer(
                    "TextLayer", centres.to_dicts(), get_position="[lon, lat]", get_text="label", get_size=13,
                    get_color=[40, 40, 40, 255], get_pixel_offset=[0, -16],
                ),
            ],
            fit_view(centres["lat"].to_list(), centres["lon"].to_list(), 640, 420),
            "{source}: {chips} chips",
        ),
        height=420,
    )  # fmt: skip
    st.markdown(
        " &nbsp; ".join(f'<span style="color:{palette[s]}">●</span> {s}' for s in order), unsafe_allow_html=True
    )
with local:
    zoom_to = str(st.selectbox("Chips of", order, key="overview_map_source"))
    footprints = chip_footprints(manifest.filter(pl.col("source") == zoom_to), subsets)
    view = fit_view(footprints["lat"].to_list(), footprints["lon"].to_list(), 640, 380)
    st.pydeck_chart(
        deck(
            [
                pdk.Layer(
                    "PolygonLayer", footprints.to_dicts(), get_polygon="polygon", get_fill_color="fill",
                    get_line_color=[60, 60, 60, 200], line_width_min_pixels=1, stroked=True, pickable=True,
                ),
                pdk.Layer(
                    "ScatterplotLayer", footprints.to_dicts(), get_position="[lon, lat]", get_fill_color="fill",
                    get_radius=1, radius_min_pixels=3, pickable=True,
                ),
            ],
            view,
            "{chip_id}\n{source} · {split} · dominant {dominant}",
        ),
        height=380,
    )  # fmt: skip
    st.markdown(
        " &nbsp; ".join(f'<span style="color:{c}">■</span> {s}' for s, c in SPLIT_COLORS.items())
        + " &nbsp; (each chip's footprint, by the kind of subset it is in)",
        unsafe_allow_html=True,
    )

st.subheader("Chips per source and subset")
if subsets is None and absent(project.subset_lists()):  # unreadable: its error is shown above
    st.info(
        f"No subsets yet: `{project.subset_lists()[0]}` is written by stage `subsets` (`uv run dvc repro subsets`)."
    )
counts = by_source(counts_per_source(manifest, subsets), order)
show(counts)
csv_button(counts, "chips_per_source", "Download counts CSV")

st.subheader("Sources")
files = {source: Path(c.path).name for source, c in crosswalk_set(project).crosswalks.items()}  # the set's pointers
registry = pl.DataFrame(registry_rows()).select("source", "title", "region", "years", "licence", "doi")
registry = registry.with_columns(crosswalk=pl.col("source").replace_strict(files, default=None))
show(by_source(registry.filter(pl.col("source").is_in(order)), order))
