"""Replace one generated block of a Markdown file, leaving the rest as written.

A block is the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``; the
validation scripts write their tables into docs/signal-checks.md this way, so that no
number in the note is typed by hand and each script can be rerun alone.
"""

from __future__ import annotations

from pathlib import Path


def replace_block(path: Path, name: str, text: str) -> None:
    """Put ``text`` between the markers named ``name`` in ``path`` (appended, with its
    markers, when the file or the block does not exist yet)."""
    path = Path(path)
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip() + ("\n\n" if old.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
