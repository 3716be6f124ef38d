"""A real browser for the console's tests: Debian's Chromium, headless, driven by Selenium
through the version-matched ``chromedriver`` (no download: both come from the test command's
Debian packages). Screenshots go to ``test-artifacts/console/`` beside the checkout."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def available() -> str | None:
    """Why no browser test can run here, or None."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(binary) is None:
            return f"{binary} is not installed (Debian packages chromium, chromium-driver)"
    return None


class Browser:
    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="console-browser-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
                     "--window-size=1400,1000", f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=options,
                                       service=webdriver.ChromeService(CHROMEDRIVER))
        self.driver.set_page_load_timeout(30)
        self.base = ""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def fresh(self, base: str) -> None:
        """A new visitor: no cookies (from the last test's console)."""
        self.base = base
        self.driver.get(base + "/login")
        self.driver.delete_all_cookies()

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        """The text of the first element ``css`` finds; the live board may replace it while
        it is read, so a read that loses its element is tried again."""
        for _ in range(20):
            try:
                found = self.all(css)
                return str(found[0].text) if found else ""
            except WebDriverException:  # stale: the section was replaced meanwhile
                time.sleep(0.05)
        return ""

    def wait(self, until: Callable[[Any], Any], timeout: float = 15, message: str = "") -> Any:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(until, message)

    def sign_in(self, name: str, password: str) -> None:
        self.open("/login")
        self.submit("main form", name=name, password=password)

    def submit(self, form_css: str, **fields: str) -> None:
        """Fill a form in and send it; returns once the answer's page has replaced this one."""
        form = self.find(form_css)
        for name, value in fields.items():
            element = form.find_element(By.CSS_SELECTOR, f"[name={name}]")
            element.clear()
            element.send_keys(value)
        html = self.find("html")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait(lambda d: _gone(html), 20, f"the answer to {form_css}")

    def source(self) -> str:
        return str(self.driver.page_source)

    def cookie(self, name: str) -> str:
        found = self.driver.get_cookie(name)
        return str(found["value"]) if found else ""

    def console_errors(self) -> list[str]:
        """What went wrong in the page (a script error, a blocked inline script or style), not
        the refusals a test asks for (a 401, a 403)."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"
                and "Failed to load resource" not in e["message"]]


def _gone(element: WebElement) -> bool:
    """The page that held ``element`` was replaced (chromedriver says so in more than one way)."""
    try:
        element.is_enabled()
    except WebDriverException:  # stale, or "does not belong to the document"
        return True
    return False


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
