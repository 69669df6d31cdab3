"""Open one page of the review app on the project in the working folder, as the matrix's command for app cases.

`python -m tests.bad_inputs.app_page <page>` prints every `st.error` the page shows as one `error:` line and exits
1 when there is one; an exception the page raised is re-raised (a traceback: the matrix fails on it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.artifacts import ROOT_ENV

ENTRY = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"


def main(page: str) -> int:
    os.environ[ROOT_ENV] = str(Path.cwd())
    app = AppTest.from_file(str(ENTRY), default_timeout=120).run()
    if page != "overview":
        app.switch_page(f"views/{page}.py").run()
    if app.exception:
        raise RuntimeError("\n".join(e.value for e in app.exception))
    shown = [e.value for e in app.error]
    for message in shown:
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
    print(f"{page}: {len(app.title)} title(s), {len(app.metric)} metric(s)")
    return 1 if shown else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
