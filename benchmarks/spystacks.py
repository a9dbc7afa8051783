"""py-spy's raw stacks summed per function, for the scripts that profile a server
(``profile.py``, ``join_storm.py --py-spy``, ``cluster.py --py-spy``)."""

from __future__ import annotations

import collections
from pathlib import Path


def spy_counts(path: Path) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """py-spy's raw stacks (``--format raw``) summed per function ("name (file)"): samples on
    top of the stack (self time), samples anywhere in it (inclusive), and all samples."""
    selfs: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")
        ]
        total += n
        selfs[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    return selfs, incl, total


def summarise(path: Path, top: int = 20) -> None:
    """Print py-spy's raw stacks summed per function: self time, then inclusive."""
    selfs, incl, total = spy_counts(path)
    print(f"py-spy: {total} samples\nself time:")
    for f, n in selfs.most_common(top):
        print(f"  {n / total:6.1%}  {f}")
    print("inclusive (without the frames under everything: the event loop, the CLI):")
    for f, n in [(f, n) for f, n in incl.most_common() if n < 0.9 * total][:top]:
        print(f"  {n / total:6.1%}  {f}")
