"""How `cropharmony app` starts Streamlit: the app file, the project root, and a local-only server by default."""

from __future__ import annotations

import sys
from pathlib import Path

ENTRY = (
    Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"
)  # a path, not an import: app depends on curation
LOCALHOST = "localhost"


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
