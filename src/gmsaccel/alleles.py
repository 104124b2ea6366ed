"""Given alleles (`gmsaccel call --alleles SITES.vcf.gz`): alleles genotyped and written whatever
the reads say, as pharmacogenomic panels and known-site genotyping need (a star allele's defining
SNVs reported as 0/0 where the sample lacks them, ./. where nothing covers them).

Each ALT of each record becomes one allele, normalised as the caller normalises its own
candidates (left-aligned, trimmed, indels anchored on the base before them), so that a given
allele and the same allele found in the reads are one. SNVs and indels of up to 300 bases can be
given; other ALTs (MNPs, complex replacements, symbolic alleles such as <DEL>, '*', longer
indels) are skipped and counted. A record on a contig the reference lacks, or whose REF differs
from the reference, is an error naming the file and record.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from gmsaccel import _core

Allele = tuple[int, str, str, str]  # 0-based position, REF, ALT (normalised), ID ('' for none)


@dataclass
class GivenAlleles:
    path: str
    by_contig: dict[str, list[Allele]] = field(default_factory=dict)  # sorted, distinct
    skipped: dict[str, int] = field(default_factory=dict)  # why -> ALTs skipped
    first_skipped: str = ""  # "record N (CHROM:POS REF>ALT)" of the first one skipped

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_contig.values())

    def near(self, contig: str, start: int, end: int) -> list[Allele]:
        """The alleles at positions in [start, end) of contig."""
        alleles = self.by_contig.get(contig, [])
        lo = bisect.bisect_left(alleles, (start, "", "", ""))
        hi = bisect.bisect_left(alleles, (end, "", "", ""))
        return alleles[lo:hi]

    def spans(self, gap: int) -> list[tuple[str, int, int]]:
        """(contig, start, end): the alleles' positions, those less than gap apart in one span."""
        out: list[tuple[str, int, int]] = []
        for contig, alleles in self.by_contig.items():
            for pos, *_ in alleles:
                if out and out[-1][0] == contig and pos - out[-1][2] < gap:
                    out[-1] = (contig, out[-1][1], pos + 1)
                else:
                    out.append((contig, pos, pos + 1))
        return out

    def skipped_note(self) -> str:
        """One line on what was skipped, or ''."""
        if not self.skipped:
            return ""
        n = sum(self.skipped.values())
        why = ", ".join(f"{k} {v:,}" for k, v in sorted(self.skipped.items()))
        return (f"{self.path}: {n:,} given ALT alleles skipped ({why}; the first: "
                f"{self.first_skipped}); SNVs and indels up to {_core.MAX_INDEL_LENGTH} bp can "
                "be given")


def read_given_alleles(path: str | os.PathLike, contigs: Mapping[str, int],
                       ref_codes: Callable[[str], np.ndarray]) -> GivenAlleles:
    """The alleles of a VCF/BCF (plain, bgzipped), checked against the reference (contigs:
    name -> length; ref_codes(contig): its base codes, A0 C1 G2 T3 N4). Records are read
    first and checked a contig at a time, so that each contig's codes are fetched once. The
    work is _core's (htslib), so that files of millions of known sites load in seconds."""
    path = os.fspath(path)
    by_contig, skipped, first = _core.read_given_alleles(path, dict(contigs), ref_codes)
    return GivenAlleles(path, by_contig, skipped, first)


def sites_file(path: str | os.PathLike) -> str:
    """The absolute path of a sites VCF/BCF to read (a germline resource), or an InputError
    naming it when it is missing or a directory."""
    full = os.path.abspath(os.fspath(path))
    if os.path.isdir(full):
        raise _core.InputError(f"{os.fspath(path)}: is a directory, not a VCF/BCF file")
    if not os.path.isfile(full):
        raise _core.InputError(f"{os.fspath(path)}: no such file")
    return full
