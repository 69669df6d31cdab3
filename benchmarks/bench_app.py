"""How fast the review app renders: start to first page in a real browser, and each page's script cold vs cached.

1. Browser: the app is started exactly as `cropharmony app` starts it (app/launch.py) on a project's artifacts and
   driven by Playwright in Debian's Chromium (`apt-get install -y chromium`; Playwright's own browser download does
   not work offline). Measured: process start to the Overview page rendered (median over fresh servers), and each
   page clicked in the navigation twice: the first visit (caches filling) and the second (a rerun).
   `--screenshots DIR` saves one PNG per page (the README's picture of the Transfer page comes from here).
2. Cached readers: every page's script run with Streamlit's caches cleared (the baseline: artifacts read from disk,
   crosswalks validated) beside a rerun with them warm (what every click costs), in one process, through
   streamlit.testing's AppTest; the ratio is printed.

    uv run python benchmarks/bench_app.py --root . --repeats 3 --screenshots docs/screenshots
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.cli.launch_app import command  # noqa: E402 - after the project root is importable

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling Google on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PAGES = ("Overview", "Class balance", "Legends", "Chips", "Validation", "Transfer")
VIEWPORT = {"width": 1400, "height": 1800}
MAIN_HEIGHT_JS = "() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight ?? 0"


def free_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(root: Path, port: int | None = None, timeout: float = 60.0) -> Iterator[tuple[str, float]]:
    """The app on localhost (as `cropharmony app` starts it): its URL and the seconds until it answered."""
    port = port or free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        command(root, port, headless=True), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://localhost:{port}"
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the app exited with {process.returncode}: {process.stdout.read() if process.stdout else ''}"
                )
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                pass
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"the app did not answer on {url} within {timeout:.0f} s")
            time.sleep(0.1)
        yield url, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def chromium(playwright: Playwright) -> Browser:
    """Debian's headless Chromium, with the flags a closed network needs."""
    if not CHROMIUM.is_file():
        raise FileNotFoundError(f"{CHROMIUM} not found: install it with `apt-get install -y chromium`")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def rendered(page: Page, title: str, timeout_ms: float = 60_000) -> None:
    """Wait until a page's title is shown and Streamlit has finished running the script."""
    page.get_by_role("heading", name=title, exact=True).wait_for(timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms, polling=50
    )


def open_page(page: Page, title: str) -> float:
    """Click a page in the navigation and return the seconds until it has rendered."""
    started = time.perf_counter()
    page.get_by_role("link", name=title, exact=True).click()
    rendered(page, title)
    return time.perf_counter() - started


def browser_run(root: Path, screenshots: Path | None) -> dict[str, Any]:
    """One fresh server: seconds to answer, to the first page rendered, and per page click (1st and 2nd visit)."""
    with serve(root) as (url, answered), sync_playwright() as playwright:
        browser = chromium(playwright)
        page = browser.new_page(viewport=VIEWPORT)
        started = time.perf_counter()
        page.goto(url)
        rendered(page, PAGES[0])
        first = answered + time.perf_counter() - started
        # Each page clicked twice in the browser: the first visit fills the caches, the second is what a rerun costs.
        visits = {title: open_page(page, title) for title in (*PAGES[1:], PAGES[0])}
        revisits = {title: open_page(page, title) for title in (*PAGES[1:], PAGES[0])}
        if screenshots is not None:
            for title in PAGES:
                if title != PAGES[0]:
                    open_page(page, title)
                page.wait_for_timeout(1500)  # let the charts finish drawing
                # Streamlit scrolls its main block, not the document: grow the viewport to the page for a whole picture.
                height = page.evaluate(MAIN_HEIGHT_JS)
                page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
                page.wait_for_timeout(500)
                page.screenshot(path=screenshots / f"{title.lower().replace(' ', '_')}.png")
                page.set_viewport_size(VIEWPORT)
        browser.close()
    return {"server_answered_s": answered, "first_render_s": first, "visits": visits, "revisits": revisits}


def script_runs(root: Path, repeats: int) -> dict[str, dict[str, float]]:
    """Per page: median seconds of its script with caches cleared (cold) and warm (cached), in one process."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from app.artifacts import ROOT_ENV

    os.environ[ROOT_ENV] = str(root.resolve())
    files = dict(zip(PAGES, ("overview", "balance", "legends", "chips", "validation", "transfer"), strict=True))
    cold: dict[str, list[float]] = {t: [] for t in PAGES}
    cached: dict[str, list[float]] = {t: [] for t in PAGES}
    app = AppTest.from_file(str(ROOT / "app" / "streamlit_app.py"), default_timeout=120).run()  # imports, once
    for _ in range(repeats):
        for title, name in files.items():
            app.switch_page(f"views/{name}.py")
            for times, clear in ((cold[title], True), (cached[title], False)):
                if clear:
                    st.cache_data.clear()
                    st.cache_resource.clear()
                started = time.perf_counter()
                app.run()
                times.append(time.perf_counter() - started)
                if app.exception:
                    raise RuntimeError(f"page {title}: {app.exception[0].value}")
    return {t: {"cold_s": statistics.median(cold[t]), "cached_s": statistics.median(cached[t])} for t in PAGES}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both parts and print the table; returns what --json writes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="project whose artifacts the app shows")
    parser.add_argument("--repeats", type=int, default=3, help="fresh servers and script runs; medians reported")
    parser.add_argument("--screenshots", type=Path, help="folder for one PNG per page (first server)")
    parser.add_argument("--json", type=Path, help="write the result here too")
    args = parser.parse_args(argv)
    if args.screenshots is not None:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    runs = [browser_run(args.root, args.screenshots if i == 0 else None) for i in range(args.repeats)]
    pages = script_runs(args.root, args.repeats)
    result = {
        "root": str(args.root),
        "repeats": args.repeats,
        "server_answered_s": statistics.median(r["server_answered_s"] for r in runs),
        "first_render_s": statistics.median(r["first_render_s"] for r in runs),
        "pages": {
            t: {
                **row,
                "ratio": row["cold_s"] / row["cached_s"],
                "browser_first_click_s": statistics.median(r["visits"][t] for r in runs),
                "browser_rerun_s": statistics.median(r["revisits"][t] for r in runs),
            }
            for t, row in pages.items()
        },
    }
    print(
        f"app start to first render (Overview, Chromium): {result['first_render_s']:.2f} s; the server answered "
        f"after {result['server_answered_s']:.2f} s (medians of {args.repeats})"
    )
    print(f"{'page':<15}{'script cold s':>14}{'cached s':>10}{'ratio':>8}{'click 1st s':>13}{'click rerun s':>15}")
    for title, row in result["pages"].items():
        print(
            f"{title:<15}{row['cold_s']:>14.3f}{row['cached_s']:>10.3f}{row['ratio']:>7.1f}x"
            f"{row['browser_first_click_s']:>13.2f}{row['browser_rerun_s']:>15.2f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
