"""``python -m ecgreport.outputs.merge OUT1 OUT2 ... --into OUT``: the same as
``ecgreport merge`` (see :mod:`ecgreport.commands.merge`), kept for scripts that use it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from ecgreport.commands.merge import run_merge

    parser = argparse.ArgumentParser(
        prog="python -m ecgreport.outputs.merge",
        description="Merge the output folders of `ecgreport batch --shard K/N` runs "
                    "(the same as `ecgreport merge`).",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="output folders of the shard runs")
    parser.add_argument("--into", required=True, type=Path, help="folder for the merged outputs")
    args = parser.parse_args(argv)
    code, message = run_merge(args.dirs, args.into)
    print(f"error: {message}" if code else message, file=sys.stderr)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
