"""SAM header text for aligned output: @HD, @SQ (with LN and M5), @RG and @PG."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from gmsaccel import __version__


class ReadGroupError(ValueError):
    """A -R/--read-group value that is not a usable @RG line."""


def parse_read_group(text: str) -> tuple[str, str]:
    """Turns a bwa-style read group ('@RG\\tID:x\\tSM:y', tabs written as \\t) into (line, ID)."""
    line = text.replace("\\t", "\t")
    if not line.startswith("@RG\t"):
        raise ReadGroupError(f"read group must start with '@RG\\t', got {text!r}")
    fields = line.split("\t")[1:]
    tags: dict[str, str] = {}
    for f in fields:
        if len(f) < 3 or f[2] != ":":
            raise ReadGroupError(f"read group field {f!r} is not TAG:value")
        if f[:2] in tags:
            raise ReadGroupError(f"read group repeats the tag {f[:2]}")
        tags[f[:2]] = f[3:]
    if not tags.get("ID"):
        raise ReadGroupError("read group has no ID:")
    return line, tags["ID"]


def sam_header(
    contigs: Sequence[tuple[str, int, str]],
    *,
    sorted_output: bool = True,
    read_group_line: str | None = None,
    command_line: Sequence[str] | None = None,
) -> str:
    """Builds the header text; contigs are (name, length, md5) in index order."""
    order = "coordinate" if sorted_output else "unsorted"
    lines = [f"@HD\tVN:1.6\tSO:{order}"]
    for name, length, md5 in contigs:
        sq = f"@SQ\tSN:{name}\tLN:{length}"
        if md5:
            sq += f"\tM5:{md5}"
        lines.append(sq)
    if read_group_line:
        lines.append(read_group_line)
    pg = f"@PG\tID:gmsaccel\tPN:gmsaccel\tVN:{__version__}"
    if command_line:
        pg += "\tCL:" + shlex.join(command_line).replace("\t", " ")
    lines.append(pg)
    return "\n".join(lines) + "\n"
