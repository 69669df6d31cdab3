"""cropharmony's review app: `uv run streamlit run app/streamlit_app.py [-- --root PROJECT]` or `cropharmony app`.

It reads the pipeline's artifacts only (never torch or the training package) and listens on localhost unless told
otherwise (.streamlit/config.toml, or the `cropharmony app --address` option).
"""

from __future__ import annotations

import streamlit as st

from app.views.common import artifacts, demo_banner

st.set_page_config(page_title="cropharmony", page_icon=":material/grass:", layout="wide")

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/public:", default=True),
    st.Page("views/balance.py", title="Class balance", icon=":material/bar_chart:"),
    st.Page("views/legends.py", title="Legends", icon=":material/table:"),
    st.Page("views/chips.py", title="Chips", icon=":material/grid_view:"),
    st.Page("views/validation.py", title="Validation", icon=":material/rule:"),
    st.Page("views/transfer.py", title="Transfer", icon=":material/compare_arrows:"),
]

page = st.navigation(PAGES)
project = artifacts()
st.sidebar.caption(f"Project: `{project.root}`  \nCrosswalk set: `{project.crosswalk_set}`")
demo_banner(project)
page.run()
