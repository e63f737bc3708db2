"""Headless Chromium driven by selenium, for the browser test and the README screenshots.

Chromium is Debian's ``chromium`` with ``chromium-driver`` (``make test`` installs them when
it can). ``unavailable()`` names what is missing, so the browser test is skipped with a reason.

Screenshots of every page of a running app::

    .venv/bin/python -m tests.app.browser http://localhost:8501 docs/screenshots --user 1 --click
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
PAGES = {"recommend": "", "live": "live", "models": "models"}


def binaries() -> tuple[str | None, str | None]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    return browser, shutil.which("chromedriver")


def unavailable() -> str | None:
    """Why the browser test cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    browser, driver = binaries()
    if browser is None:
        return "no chromium binary (apt-get install chromium chromium-driver; `make test` does it as root)"
    if driver is None:
        return "no chromedriver binary (apt-get install chromium-driver)"
    return None


def chromium(width: int = 1400, height: int = 1000) -> Any:
    """A headless Chromium WebDriver (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = browser or ""
    for arg in (*CHROMIUM_ARGS, f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def wait_css(driver: Any, selector: str, timeout_s: float = 60.0) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, selector))
    )


def wait_idle(driver: Any, timeout_s: float = 60.0) -> None:
    """Until Streamlit's "running" indicator is gone (the script finished its run)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout_s
    time.sleep(0.5)
    while time.monotonic() < deadline:
        if not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]'):
            return
        time.sleep(0.2)


def rows(driver: Any, kind: str, k: int = 10) -> list[str]:
    """The visible ranked list of ``kind`` (student / teacher) on the Recommend page."""
    from selenium.webdriver.common.by import By

    out = []
    for rank in range(1, k + 1):
        found = driver.find_elements(By.CSS_SELECTOR, f".st-key-rec-{kind}-{rank} [data-testid='stMarkdownContainer']")
        if found:
            out.append(found[0].text.strip())
    return out


def full_page_screenshot(driver: Any, path: Path, width: int = 1400) -> Path:
    """Resize the window to the page's height, then save a PNG."""
    height = driver.execute_script(
        "const m = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        "return Math.max(m.scrollHeight, document.body.scrollHeight);"
    )
    driver.set_window_size(width, min(max(int(height) + 80, 800), 4000))
    time.sleep(1.5)  # charts re-layout after the resize
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


def click_first(driver: Any, kind: str = "student", timeout_s: float = 60.0) -> str:
    """Click ▶ on the first recommendation of ``kind``; the text of the consumer's answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait_css(driver, f".st-key-click-{kind}-1 button", timeout_s)
    wait_idle(driver)
    driver.find_element(By.CSS_SELECTOR, f".st-key-click-{kind}-1 button").click()
    outcome = wait_css(driver, ".st-key-click-outcome", timeout_s)
    WebDriverWait(driver, timeout_s, 0.2).until(
        lambda d: "The consumer wrote" in outcome.text or "no consumer wrote" in outcome.text
    )
    wait_idle(driver)
    return outcome.text


def capture_pages(
    base_url: str, out_dir: Path, user: int | None = None, click: bool = False, settle_s: float = 4.0
) -> list[Path]:
    """A full-page PNG of every page (``click``: after clicking the first student recommendation)."""
    driver = chromium()
    saved = []
    try:
        for name, path in PAGES.items():
            query = f"?user={user}" if user is not None and name == "recommend" else ""
            driver.set_window_size(1400, 1000)
            driver.get(f"{base_url.rstrip('/')}/{path}{query}")
            wait_css(driver, '[data-testid="stMain"] h1', 120)
            wait_idle(driver)
            if click and name == "recommend":
                click_first(driver)
            time.sleep(settle_s)  # charts and fragments draw
            saved.append(full_page_screenshot(driver, out_dir / f"{name}.png"))
    finally:
        driver.quit()
    return saved


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--user", type=int)
    parser.add_argument("--click", action="store_true", help="Click the first student recommendation first.")
    args = parser.parse_args()
    for saved in capture_pages(args.url, args.out_dir, args.user, args.click):
        print(saved)
