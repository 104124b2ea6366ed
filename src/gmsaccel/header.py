"""SAM header text for aligned output: @HD, @SQ (with LN and M5), @RG and @PG."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from gmsaccel import __version__


class ReadGroupError(ValueError):
    """A -R/--read-group value that is not a usable @RG line."""


def parse_read_group(text: str) -> tuple[str, str]:
    """Turns a bwa-style read group ('@RG\\tID:x\\tSM:y', tabs written as \\t) into (line, ID)."""
    line, tags = _read_group_tags(text)
    return line, tags["ID"]


def _read_group_tags(text: str) -> tuple[str, dict[str, str]]:
    """A bwa-style read group's @RG line and its tags, checked."""
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
    return line, tags


def read_groups_for(texts: Sequence[str], files: int,
                    one_library: bool = False) -> tuple[list[str], list[str]]:
    """The @RG lines and IDs of bwa-style read groups for `files` input files (a sample's
    lanes): one for all, or one per file with distinct IDs. one_library (duplicates are marked
    across all of them): their LB tags must agree."""
    if len(texts) not in (1, files):
        raise ReadGroupError(f"{len(texts)} read groups for {files} files of reads: give one, "
                             "or one per file (lane)")
    parsed = [_read_group_tags(t) for t in texts]
    ids = [tags["ID"] for _, tags in parsed]
    if len(set(ids)) != len(ids):
        raise ReadGroupError(f"read groups share an ID: {', '.join(ids)}")
    if one_library:
        libraries = {tags.get("LB") for _, tags in parsed}
        if len(libraries) > 1:
            raise ReadGroupError("duplicates are marked within one library, but the read "
                                 f"groups name several (LB: {', '.join(map(str, libraries))})")
    return [line for line, _ in parsed], ids


def sam_header(
    contigs: Sequence[tuple[str, int, str]],
    *,
    sorted_output: bool = True,
    read_group_line: str | Sequence[str] | None = None,
    command_line: Sequence[str] | None = None,
) -> str:
    """Builds the header text; contigs are (name, length, md5) in index order; one @RG line or
    several (a sample's lanes)."""
    order = "coordinate" if sorted_output else "unsorted"
    lines = [f"@HD\tVN:1.6\tSO:{order}"]
    for name, length, md5 in contigs:
        sq = f"@SQ\tSN:{name}\tLN:{length}"
        if md5:
            sq += f"\tM5:{md5}"
        lines.append(sq)
    if isinstance(read_group_line, str):
        read_group_line = [read_group_line]
    lines.extend(read_group_line or [])
    pg = f"@PG\tID:gmsaccel\tPN:gmsaccel\tVN:{__version__}"
    if command_line:
        pg += "\tCL:" + shlex.join(command_line).replace("\t", " ")
    lines.append(pg)
    return "\n".join(lines) + "\n"
