"""Mapping accuracy of alignments of simulated reads whose names carry their true origin
(dwgsim's convention: CONTIG_POS1_POS2_..., 1-based leftmost positions of read 1 and read 2)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pysam

THRESHOLDS = (0, 1, 10, 20, 30, 40, 50, 60)


def true_origin(
    name: str, is_read2: bool, contigs: frozenset[str] = frozenset()
) -> tuple[str, int]:
    """(contig, 1-based position) from a simulated read's name. Known contig names are matched
    first, so that names which themselves end in '_<digits>' parse correctly."""
    for c in sorted((c for c in contigs if name.startswith(c + "_")), key=len, reverse=True):
        rest = name[len(c) + 1:].split("_")
        if len(rest) >= 2 and rest[0].isdigit() and rest[1].isdigit():
            return c, int(rest[1] if is_read2 else rest[0])
    fields = name.split("_")
    for i in range(1, len(fields) - 1):
        if fields[i].isdigit() and fields[i + 1].isdigit():
            return "_".join(fields[:i]), int(fields[i + 1] if is_read2 else fields[i])
    raise ValueError(f"read name carries no origin: {name}")


@dataclass
class MappingAccuracy:
    reads: int = 0
    unmapped: int = 0
    mapped_at: dict[int, int] = field(default_factory=lambda: dict.fromkeys(THRESHOLDS, 0))
    wrong_at: dict[int, int] = field(default_factory=lambda: dict.fromkeys(THRESHOLDS, 0))

    def mapped_fraction(self, mapq: int) -> float:
        return self.mapped_at[mapq] / max(self.reads, 1)

    def wrong_fraction(self, mapq: int) -> float:
        return self.wrong_at[mapq] / max(self.mapped_at[mapq], 1)


def mapping_accuracy(path: str | os.PathLike, tolerance: int = 20) -> MappingAccuracy:
    """Scores primary alignments: right contig and leftmost position (soft clip added back)
    within tolerance of the truth."""
    acc = MappingAccuracy()
    with pysam.AlignmentFile(os.fspath(path), check_sq=False) as f:
        contigs = frozenset(f.references)
        for r in f:
            if r.is_secondary or r.is_supplementary:
                continue
            acc.reads += 1
            if r.is_unmapped:
                acc.unmapped += 1
                continue
            chrom, pos = true_origin(r.query_name, r.is_read2, contigs)
            cig = r.cigartuples or []
            clip = cig[0][1] if cig and cig[0][0] == 4 else 0
            ok = r.reference_name == chrom and abs(r.reference_start + 1 - clip - pos) <= tolerance
            for t in THRESHOLDS:
                if r.mapping_quality >= t:
                    acc.mapped_at[t] += 1
                    acc.wrong_at[t] += 0 if ok else 1
    return acc
