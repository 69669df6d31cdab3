"""How `cropharmony app` starts Streamlit: the app file, the project root, and a local-only server by default.

Every safety setting travels as a command-line flag, the one source Streamlit ranks above every config file and
environment variable: `--server.address 127.0.0.1` (this machine only; Streamlit's default listens on every
interface) and `--browser.gatherUsageStats false` (Streamlit's default sends usage statistics), whatever folder the
command runs in and whatever ~/.streamlit/config.toml says. app/.streamlit/config.toml holds the same values for a
plain `streamlit run app/streamlit_app.py`, and the app warns in its sidebar when it runs without them.
"""

from __future__ import annotations

import sys
from pathlib import Path

ENTRY = (
    Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"
)  # a path, not an import: app depends on curation
LOCALHOST = "127.0.0.1"  # an address, not a name: no resolver (or /etc/hosts) decides where it listens


def command(root: Path, port: int = 8501, address: str = LOCALHOST, *, headless: bool = True) -> list[str]:
    """The `streamlit run` command line; the root travels after `--` as the app's own `--root` argument."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ENTRY),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--",
        "--root",
        str(root.resolve()),
    ]
