"""The app is local-only with no usage statistics wherever `streamlit run` starts, and warns when it is not.

Streamlit reads app/.streamlit/config.toml (the entry script's folder) whatever the working directory; these tests
load Streamlit's configuration the way `streamlit run` does, from a foreign folder with hostile user and folder
config files, and show the sidebar warning when an override exposes the app.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from app.artifacts import ROOT_ENV
from app.serving import exposure, serving_warnings
from curation.cli.launch_app import ENTRY, LOCALHOST, command

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_CONFIG = ROOT / "app" / ".streamlit" / "config.toml"
HOSTILE = '[server]\naddress = "0.0.0.0"\n[browser]\ngatherUsageStats = true\n'

LOAD = f"""
import json, sys
from streamlit import config
from streamlit.web import bootstrap
config._main_script_path = {str(ENTRY)!r}  # what `streamlit run <file>` sets before it loads the options
bootstrap.load_config_options(flag_options=json.loads(sys.argv[1]))  # flags and STREAMLIT_* variables, via click
print(json.dumps([config.get_option("server.address"), config.get_option("browser.gatherUsageStats")]))
"""


def test_exposure_of_addresses() -> None:
    assert [exposure(a) for a in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2")] == [None] * 5
    assert exposure(None) == exposure("") == "every network interface (`server.address` is not set)"
    assert exposure("0.0.0.0") == "every network interface (`0.0.0.0`)" and "every" in str(exposure("::"))
    assert exposure("192.168.1.20") == "`192.168.1.20`, reachable from its network"
    assert "host name" in str(exposure("myhost.example.org"))


def test_serving_warnings() -> None:
    assert serving_warnings(LOCALHOST, False) == []
    exposed, stats = serving_warnings("0.0.0.0", True)
    assert "listens on every network interface" in exposed and "--server.address 127.0.0.1" in exposed
    assert "usage statistics" in stats and "--browser.gatherUsageStats false" in stats
    assert len(serving_warnings(LOCALHOST, True)) == 1  # Streamlit's default is True: only False is safe


def test_both_config_files_hold_the_same_safe_settings() -> None:
    script = tomllib.loads(SCRIPT_CONFIG.read_text())
    assert script == tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert script["server"]["address"] == LOCALHOST and script["browser"]["gatherUsageStats"] is False
    assert script["server"]["headless"] is True


def load_options(cwd: Path, home: Path, flags: dict[str, str] | None = None) -> list[object]:
    """Streamlit's server.address and browser.gatherUsageStats as `streamlit run app/streamlit_app.py` gets them."""
    environment = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", LOAD, json.dumps(flags or {})],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    options: list[object] = json.loads(done.stdout.strip().splitlines()[-1])
    return options


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, Path]:
    """A working folder and a home folder outside the project, both with config files that expose the app."""
    cwd, home = tmp_path / "somewhere", tmp_path / "home"
    for folder in (cwd, home):
        (folder / ".streamlit").mkdir(parents=True)
        (folder / ".streamlit" / "config.toml").write_text(HOSTILE)
    return cwd, home


def test_started_from_any_folder_the_app_is_local_with_no_statistics(elsewhere: tuple[Path, Path]) -> None:
    cwd, home = elsewhere
    assert load_options(cwd, home) == [LOCALHOST, False]


def test_a_flag_still_wins_which_is_what_the_app_warns_about(elsewhere: tuple[Path, Path]) -> None:
    cwd, home = elsewhere
    address, _ = load_options(cwd, home, {"server_address": "0.0.0.0"})  # --server.address or its STREAMLIT_ variable
    assert address == "0.0.0.0" and serving_warnings(str(address), False)


@pytest.fixture
def exposed() -> Iterator[None]:
    """The in-process Streamlit configuration of a server started with `--server.address 0.0.0.0`."""
    before = config.get_option("server.address"), config.get_option("browser.gatherUsageStats")
    config.set_option("server.address", "0.0.0.0", "command-line argument or environment variable")
    config.set_option("browser.gatherUsageStats", True, "command-line argument or environment variable")
    yield
    config.set_option("server.address", before[0])
    config.set_option("browser.gatherUsageStats", before[1])


def bare_app(root: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    shutil.copy2(ROOT / "params.yaml", root / "params.yaml")
    shutil.copytree(ROOT / "curation" / "legends", root / "curation" / "legends")
    monkeypatch.setenv(ROOT_ENV, str(root))
    app = AppTest.from_file(str(ENTRY), default_timeout=60).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_the_app_warns_in_its_sidebar_when_exposed(
    exposed: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = bare_app(tmp_path, monkeypatch)
    shown = [w.value for w in app.sidebar.warning]
    assert any("listens on every network interface (`0.0.0.0`)" in w for w in shown), shown
    assert any("gathering usage statistics" in w for w in shown), shown


def test_the_app_says_nothing_when_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = config.get_option("server.address"), config.get_option("browser.gatherUsageStats")
    config.set_option("server.address", LOCALHOST)
    config.set_option("browser.gatherUsageStats", False)
    try:
        app = bare_app(tmp_path, monkeypatch)
    finally:
        config.set_option("server.address", before[0])
        config.set_option("browser.gatherUsageStats", before[1])
    assert not app.sidebar.warning


def test_the_launcher_passes_the_safe_flags(tmp_path: Path) -> None:
    line = command(tmp_path)
    flags = dict(zip(line[5:-3:2], line[6:-3:2], strict=True))
    assert flags["--server.address"] == "127.0.0.1" and flags["--browser.gatherUsageStats"] == "false"
