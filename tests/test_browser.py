"""End to end in headless Chromium against `streamlit run`: upload a file, browse it, search, screenshot.

AppTest has no file uploader and runs every rerun on one thread, so this is the one test that sees
the app as a user does: a real server, real threads, a real browser. Chromium comes from Debian; the
test is skipped where it is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.helpers import chat

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "WORKBENCH_DB": str(tmp_path / "browser.db")}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "Home.py",
            "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        ],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    pytest.fail(f"streamlit did not start:\n{output}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
def test_upload_browse_search_and_screenshot(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    upload = tmp_path / "support.jsonl"
    records = [chat(f"Where is my parcel number {i}?", f"Parcel {i} ships tomorrow.") for i in range(12)]
    records.append(chat("<script>alert('x')</script> refund please", "<b>Refund</b> issued."))
    upload.write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\nnot json\n")
    shots = Path(os.environ.get("WORKBENCH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        try:
            page.goto(f"{server}/Datasets", wait_until="networkidle")
            expect(page.get_by_text("No datasets yet")).to_be_visible(timeout=30_000)
            page.locator('input[type="file"]').set_input_files(str(upload))
            page.get_by_placeholder("named after the file", exact=False).fill("support")
            page.get_by_role("button", name="Import").click()
            expect(page.get_by_text(re.compile(r"Last import: .+ into support"))).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Lines not imported", exact=False).first).to_be_visible()
            page.screenshot(path=str(shots / "datasets-import.png"), full_page=True)

            page.get_by_role("tab", name="Browse").click()
            expect(page.get_by_text("13 matching examples").first).to_be_visible(timeout=30_000)
            page.get_by_placeholder("Words to find in any turn").fill("refund")
            page.keyboard.press("Enter")
            expect(page.get_by_text("1 matching example").first).to_be_visible(timeout=30_000)
            assert "q=refund" in page.url
            page.screenshot(path=str(shots / "datasets-browse.png"), full_page=True)

            # The example opens scrolled into view, its text exactly as stored (no Markdown, no HTML).
            hostile = "<script>alert('x')</script> refund please"
            page.get_by_label("Open example by id").fill(str(13))
            page.keyboard.press("Enter")
            expect(page.locator("#open-example")).to_be_in_viewport(timeout=30_000)
            expect(page.locator("code", has_text=hostile).first).to_be_visible()
            page.screenshot(path=str(shots / "datasets-example.png"))

            # Offline: the favicon is the app's own, and nothing is fetched from anywhere but the app.
            favicon = page.evaluate("document.querySelector(\"link[rel='shortcut icon']\")?.href") or ""
            assert favicon.startswith("data:image/svg+xml"), favicon[:80]
            elsewhere = {u for u in requests if not u.startswith((server, "data:", "blob:"))}
            assert elsewhere == set(), elsewhere

            # A shared link reproduces the view: a fresh tab on the same URL shows the same selection.
            link = page.url
            second = browser.new_page(viewport={"width": 1400, "height": 1000})
            second.goto(link, wait_until="networkidle")
            expect(second.get_by_text("1 matching example").first).to_be_visible(timeout=30_000)
            assert dialogs == [], "user text must never run as script"
        finally:
            browser.close()
