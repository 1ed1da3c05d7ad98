"""Keeps REPRODUCE.md's per-backbone deviation lists in step with the module docstrings.

The docstring of each backbone module is the source: its first paragraph and everything from
its "Deviations ..." line on are copied between the ``deviations`` markers of REPRODUCE.md.

    python -m benchmark.deviations           # rewrite the block in REPRODUCE.md
    python -m benchmark.deviations --check   # exit 1 when REPRODUCE.md is out of date
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Optional

from backbones.base import get_backbone, registered
from benchmark.store import atomic_write_text

START, END = "<!-- deviations:start -->", "<!-- deviations:end -->"
# The paper's nine in MMRec's order, then the extras; any other backbone follows by name.
ORDER = ("vbpr", "mmgcn", "grcn", "dualgnn", "slmrec", "lattice", "bm3", "freedom", "lgmrec",
         "lightgcn", "bpr", "mgcn", "dragon")
PREAMBLE = ("Each block below is the deviation list of the module docstring (the docstring is "
            "the source; regenerate after editing one).")
DEFAULT_FILE = Path(__file__).resolve().parent.parent / "REPRODUCE.md"


def deviation_block(name: str) -> Optional[str]:
    """The REPRODUCE.md block of one backbone, or None when its docstring lists no deviations."""
    doc = importlib.import_module(get_backbone(name).__module__).__doc__ or ""
    lines = doc.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.lower().startswith("deviation")]
    if not starts:
        return None
    first = []
    for line in lines:
        if not line.strip():
            break
        first.append(line.strip())
    body = "\n".join(lines[starts[0]:]).rstrip()
    return f"#### {name}\n\n{' '.join(first)}\n\n{body}"


def render() -> str:
    names = [n for n in ORDER if n in registered()]
    names += sorted(n for n in registered() if n not in ORDER)
    blocks = [b for b in (deviation_block(n) for n in names) if b is not None]
    return "\n".join([START, PREAMBLE, "", "\n\n".join(blocks), END])


def updated(text: str) -> str:
    """``text`` with the marked block replaced by the current rendering."""
    head, sep, rest = text.partition(START)
    if not sep or END not in rest:
        raise ValueError(f"REPRODUCE.md lacks the {START} ... {END} markers")
    tail = rest.partition(END)[2]
    return head + render() + tail


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.deviations", description=__doc__.splitlines()[0])
    p.add_argument("--file", type=Path, default=DEFAULT_FILE)
    p.add_argument("--check", action="store_true", help="only report whether the file is current")
    args = p.parse_args(argv)
    text = args.file.read_text()
    new = updated(text)
    if args.check:
        if new != text:
            print(f"{args.file}: deviation lists are out of date; run python -m benchmark.deviations")
            return 1
        print(f"{args.file}: deviation lists are current")
        return 0
    if new != text:
        atomic_write_text(args.file, new)
    print(f"{args.file}: {'updated' if new != text else 'already current'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
