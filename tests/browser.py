"""Headless Chromium (Debian's chromium and chromium-driver, installed by 'make setup') driven by Selenium."""

import contextlib
import shutil

import pytest

MISSING = ("needs Debian's chromium and chromium-driver (make setup installs them with apt-get; "
           "elsewhere install a Chromium and its chromedriver on PATH)")


def chromium_paths():
    """``(browser, driver)`` paths, or None when either is not installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def chromium(width=1440, height=1000):
    """A headless Chromium WebDriver; skips the calling test when Chromium is not installed."""
    paths = chromium_paths()
    if paths is None:
        pytest.skip(MISSING)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]  # with both paths given Selenium Manager (a downloader) never runs
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))
    try:
        yield driver
    finally:
        driver.quit()


def wait_ready(driver, timeout=60):
    """Wait for the review page's first render; returns its time from navigation start, in ms."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script("return document.documentElement.dataset.ready"))
    return driver.execute_script("return window.FACETAG_READY_MS")
