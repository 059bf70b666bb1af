"""`make screenshot`: the README's picture of the leaderboard page, taken from real runs.

Renders the HTML leaderboard of RESULTS (after `make demo`: runs/smoke) and photographs it in
headless Chromium at WIDTH x HEIGHT, so the README shows the page as a reader sees it. Run it
again whenever the page changes, and commit the image. Needs Debian's chromium and
chromium-driver and selenium (`make test` installs them). Exit 2, one line, when RESULTS holds no
readable record or the browser is missing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from prunebench.core.errors import UserError
from prunebench.leaderboard import render_leaderboard

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--hide-scrollbars")


def photograph(page: Path, out: Path, width: int, height: int) -> None:
    """A screenshot of `page` (opened offline from disk) at the given window size."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.get(page.as_uri())
            out.write_bytes(driver.get_screenshot_as_png())
        finally:
            driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a directory of runs, e.g. runs/smoke")
    parser.add_argument("out", help="the PNG to write, e.g. docs/leaderboard.png")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1500)  # the first track: its plots and its table
    args = parser.parse_args(argv)
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    try:
        if missing:
            raise UserError(f"{', '.join(missing)} missing: install with `apt-get install -y chromium chromium-driver`")
        with tempfile.TemporaryDirectory() as work:
            page = Path(work) / "leaderboard.html"
            render_leaderboard(args.results, fmt="html", out=page)
            photograph(page, Path(args.out), args.width, args.height)
    except UserError as exc:
        print(f"screenshot: error: {exc}", file=sys.stderr)
        return 2
    print(f"screenshot of {args.results}'s leaderboard written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
