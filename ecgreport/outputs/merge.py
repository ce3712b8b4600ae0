"""Merge the output folders of ``ecgreport batch --shard K/N`` runs into one.

    python -m ecgreport.outputs.merge out-1 out-2 out-3 --into out

Exit status 0 when merged, 2 when the folders cannot be merged (the reason on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecgreport.outputs.writers import merge_outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ecgreport.outputs.merge",
        description="Merge the output folders of `ecgreport batch --shard K/N` runs.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="output folders of the shard runs")
    parser.add_argument("--into", required=True, type=Path, help="folder for the merged outputs")
    args = parser.parse_args(argv)
    try:
        merged = merge_outputs(args.dirs, args.into)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = merged["counts"]
    print(f"merged {len(args.dirs)} runs into {args.into}: {counts.get('ok', 0)} ok, "
          f"{counts.get('failed', 0)} failed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
