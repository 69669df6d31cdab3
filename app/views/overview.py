"""Overview: every source on a world map with its chips, counts per source and subset, the crosswalk set in use."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import streamlit as st

from app.queries.overview import chip_points, counts_per_source, crosswalk_sets, source_palette, subset_order
from app.views.common import absent, artifacts, crosswalk_set, guard, optional, table
from curation.core.registry import registry_rows

st.title("Overview")
project = artifacts()
manifest = guard(lambda: table(project.manifest()))
subsets = optional(project.subset_lists())

used = crosswalk_sets(manifest)
left, middle, right, last = st.columns(4)
left.metric("Sources", manifest["source"].n_unique())
middle.metric("Chips", manifest.height)
right.metric("Crosswalk set", ", ".join(used))
last.metric("Subsets per source", len(subset_order(subsets)) if subsets is not None else 0)
if used != [project.crosswalk_set]:
    st.warning(
        f"The chips were cut with crosswalk set {', '.join(used)} but params.yaml selects "
        f"`{project.crosswalk_set}`: run `uv run dvc repro chips` to cut them again."
    )

palette = source_palette(manifest["source"].unique().to_list())
st.subheader("Where the chips are")
st.map(chip_points(manifest, palette).to_pandas(), latitude="lat", longitude="lon", color="color", size=4000, zoom=1)
legend = " &nbsp; ".join(f'<span style="color:{color}">●</span> {name}' for name, color in palette.items())
st.markdown(legend, unsafe_allow_html=True)

st.subheader("Chips per source and subset")
if subsets is None and absent(project.subset_lists()):  # unreadable: its error is shown above
    st.info(
        f"No subsets yet: `{project.subset_lists()[0]}` is written by stage `subsets` (`uv run dvc repro subsets`)."
    )
st.dataframe(counts_per_source(manifest, subsets), hide_index=True)

st.subheader("Sources")
files = {source: Path(c.path).name for source, c in crosswalk_set(project).crosswalks.items()}  # the set's pointers
registry = pl.DataFrame(registry_rows()).select("source", "title", "region", "years", "licence", "doi")
registry = registry.with_columns(crosswalk=pl.col("source").replace_strict(files, default=None))
st.dataframe(registry.filter(pl.col("source").is_in(manifest["source"].unique().to_list())), hide_index=True)
