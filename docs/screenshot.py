"""Render the README's report screenshot: train on the embedded digits, write the
report and photograph it in headless Chromium.

Run from the repository root: ``python docs/screenshot.py`` (needs playwright and
Debian's chromium, as the tests do). It writes docs/report-screenshot.png.
"""

import shutil
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from aekit import AutoEncoder
from aekit.data import read_data
from aekit.reports import write_report

OUT = Path(__file__).resolve().parent / "report-screenshot.png"


def main() -> None:
    digits = read_data(None)
    model = AutoEncoder(latent_dim=8, random_state=0, timeline=8).fit(digits.X)
    with tempfile.TemporaryDirectory() as folder:
        path = write_report(model, folder, digits.X, labels=digits.labels, data_description=digits.describe())
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1200, "height": 1500})
            page.goto(path.as_uri())
            page.screenshot(path=str(OUT))
            browser.close()
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
