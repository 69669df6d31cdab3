"""Tables as every page shows them: shares in %, counts with thousands separators, a visible CSV download button.

`show` picks each column's format from its name and type (a `*share*` or `*_pct` column in %, integers grouped by
thousands, other numbers to three decimals), so every page formats alike without listing columns.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

DECIMALS = "%.3f"


def is_share(name: str) -> bool:
    """A column holding a fraction of 1 shown in % (pixel_share, share_maize, ...)."""
    return "share" in name


def column_formats(frame: pl.DataFrame) -> dict[str, Any]:
    """Streamlit column configs: shares in %, integers with thousands separators, floats with 3 decimals."""
    config: dict[str, Any] = {}
    for name, dtype in frame.schema.items():
        if not dtype.is_numeric():
            continue
        if is_share(name) and dtype.is_float():
            config[name] = st.column_config.NumberColumn(name, format="percent")
        elif dtype.is_integer():
            config[name] = st.column_config.NumberColumn(name, format="localized")
        else:
            config[name] = st.column_config.NumberColumn(name, format=DECIMALS)
    return config


def show(frame: pl.DataFrame, **options: Any) -> Any:  # noqa: ANN401 - st.dataframe's own return
    """st.dataframe with the formats above (options: key, on_select, selection_mode, column_config, height...)."""
    config = {**column_formats(frame), **options.pop("column_config", {})}
    return st.dataframe(frame, hide_index=True, column_config=config, **options)


def csv_button(frame: pl.DataFrame, name: str, label: str = "Download CSV", *, key: str | None = None) -> None:
    """A visible download button for `frame` as CSV (`name`.csv): the numbers behind a chart or table."""
    st.download_button(
        label,
        frame.write_csv(),
        file_name=f"{name}.csv",
        mime="text/csv",
        icon=":material/download:",
        key=key or f"csv-{name}",
    )
