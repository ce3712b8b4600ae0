"""The README's example output is what the shipped bundle writes for sample_ecgs/ today."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("readme_example", ROOT / "scripts" / "readme_example.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_example_matches_a_fresh_run(tmp_path):
    mod = _script()
    out = tmp_path / "ecgreport-out"
    subprocess.run([sys.executable, "-m", "ecgreport", "batch", str(ROOT / "sample_ecgs"), "--out", str(out),
                    "--quiet", "--pictures", "none"], check=True)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = mod.START + readme.split(mod.START, 1)[1].split(mod.END, 1)[0] + mod.END
    assert shown == mod.block(out), "README example is stale: python scripts/readme_example.py"
