"""Screenshots of the run's pages for the README, made from `sample_ecgs` (not by hand).

    python scripts/make_screenshots.py            # writes docs/overview.png, docs/record_page.png

Runs ``ecgreport batch sample_ecgs`` (the packaged model) into a temporary folder, opens
its ``index.html`` and one record page in the system's headless Chromium (the client of
``tests/headless.py``) and saves a PNG of each. The samples are synthetic ECGs
(``sample_ecgs/README.md``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from headless import Browser, find_chromium  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the PNGs go (docs/)")
    parser.add_argument("--record", default="long_30s_100hz",
                        help="the record whose page is shown (long_30s_100hz)")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        raise SystemExit("error: no Chromium found (apt-get install chromium, or set $CHROMIUM)")
    args.docs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ecgreport-shots-") as tmp:
        out = Path(tmp) / "out"
        subprocess.run([sys.executable, "-m", "ecgreport", "batch", str(ROOT / "sample_ecgs"),
                        "--out", str(out), "--quiet", "--pictures", "all"], check=True)
        with Browser(width=1280, height=560) as browser:
            browser.open(out / "index.html")
            browser.screenshot(args.docs / "overview.png")
        with Browser(width=1100, height=760) as browser:
            browser.open(out / "pages" / f"{args.record}.html")
            browser.screenshot(args.docs / "record_page.png")
    for name in ("overview.png", "record_page.png"):
        print(args.docs / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
