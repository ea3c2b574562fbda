"""The report opens in headless Chromium: it renders, every section and figure shows, no errors.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them); skipped where they are absent.
"""

import shutil

import pytest
from test_study import SECTIONS, TINY

from iftscope.cli import main

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="Debian chromium and chromium-driver not installed"
)

FIGURES = ("fig-accuracy", "fig-consistency", "fig-shift", "fig-loss", "fig-coverage")


def test_report_renders_in_headless_chromium(tmp_path):
    pytest.importorskip("selenium")
    from selenium.webdriver import Chrome, ChromeOptions
    from selenium.webdriver.chrome.service import Service

    out = tmp_path / "run"
    assert main(["run", *TINY, "seeds=[0]", "render.styles=[answer]", "--out", str(out), "--quiet"]) == 0
    options = ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)  # fmt: skip
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get((out / "report" / "report.html").as_uri())
        assert "iftscope" in driver.title
        for section in SECTIONS:
            assert driver.find_element("id", section).is_displayed(), section
        for fig in FIGURES:
            loaded = driver.execute_script(
                "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0;",
                fig,
            )
            assert loaded, f"figure {fig} did not load"
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert not errors, errors
    finally:
        driver.quit()
