"""Where the review app listens and whether Streamlit gathers usage statistics: checked at start, not settable here.

Streamlit reads both options before the script runs, from (later wins) ~/.streamlit/config.toml, the folder it was
started from ($CWD/.streamlit/config.toml), the folder of the entry script (app/.streamlit/config.toml, read wherever
`streamlit run app/streamlit_app.py` is started from), STREAMLIT_* environment variables, then command-line flags. A
script cannot change them: `st.set_option` takes `client.*` options only. So the safe values live in
app/.streamlit/config.toml, `cropharmony app` passes them as flags as well, and the app warns when what it runs with
is not safe (an environment variable or a flag chose otherwise, or an older Streamlit ignored the script's folder).
"""

from __future__ import annotations

import ipaddress

SAFE_START = (
    "`uv run cropharmony app` (127.0.0.1, no usage statistics), or "
    "`streamlit run app/streamlit_app.py --server.address 127.0.0.1 --browser.gatherUsageStats false`"
)


def exposure(address: str | None) -> str | None:
    """Who besides this machine can reach an app listening on `address` (None: nobody, a loopback address)."""
    if address is None or not address.strip():
        return "every network interface (`server.address` is not set)"
    if address == "localhost":
        return None
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return f"`{address}`, a host name: whatever network it resolves to"
    if ip.is_loopback:
        return None
    if ip.is_unspecified:
        return f"every network interface (`{address}`)"
    return f"`{address}`, reachable from its network"


def serving_warnings(address: str | None, gather_usage_stats: object) -> list[str]:
    """What to tell the person running the app about the server it started (empty: local only, no statistics)."""
    warnings = []
    where = exposure(address)
    if where is not None:
        warnings.append(
            f"This app listens on {where}: anyone who can reach it sees the project's artifacts. Unless that is "
            f"meant, restart it with {SAFE_START}."
        )
    if gather_usage_stats is not False:
        warnings.append(
            "Streamlit is gathering usage statistics from this browser (`browser.gatherUsageStats`). Restart it "
            f"with {SAFE_START}."
        )
    return warnings
