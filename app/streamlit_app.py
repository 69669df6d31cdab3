"""cropharmony's review app: `uv run cropharmony app [--root PROJECT]`, or `streamlit run app/streamlit_app.py`.

It reads the pipeline's artifacts only (never torch or the training package). It listens on 127.0.0.1 and sends no
usage statistics wherever it is started from: Streamlit reads app/.streamlit/config.toml, beside this file, whatever
the working directory, and `cropharmony app` passes `--server.address 127.0.0.1 --browser.gatherUsageStats false`
as flags too (`--address` to listen elsewhere). A script cannot set those options itself, so the app checks them at
start and warns in the sidebar when an environment variable or a flag made it reachable from the network or
turned statistics on (app/serving.py).
"""

from __future__ import annotations

import streamlit as st

from app.serving import serving_warnings
from app.views.common import artifacts, demo_banner

st.set_page_config(page_title="cropharmony", page_icon="🌾", layout="wide")  # an emoji: no icon fetched from the web

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/public:", default=True),
    st.Page("views/balance.py", title="Class balance", icon=":material/bar_chart:"),
    st.Page("views/legends.py", title="Legends", icon=":material/table:"),
    st.Page("views/chips.py", title="Chips", icon=":material/grid_view:"),
    st.Page("views/validation.py", title="Validation", icon=":material/rule:"),
    st.Page("views/transfer.py", title="Transfer", icon=":material/compare_arrows:"),
]

page = st.navigation(PAGES)
for warning in serving_warnings(st.get_option("server.address"), st.get_option("browser.gatherUsageStats")):
    st.sidebar.warning(warning, icon=":material/public:")
project = artifacts()
st.sidebar.caption(f"Project: `{project.root}`  \nCrosswalk set: `{project.crosswalk_set}`")
demo_banner(project)
page.run()
