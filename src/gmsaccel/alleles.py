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
import pysam

from gmsaccel import _core

MAX_INDEL = 300  # pileup.hpp's kMaxIndelLength: longer indels are structural variants
_BASES = "ACGTN"

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
                f"{self.first_skipped}); SNVs and indels up to {MAX_INDEL} bp can be given")


def _kind(ref: str, alt: str) -> str | None:
    """None for an SNV or an anchored indel (normalised), else why it cannot be given."""
    if not ref or not alt:
        return "indel at the contig's start"  # nothing before it to anchor on
    if len(ref) == 1 and len(alt) == 1:
        return None
    if (len(ref) == 1 or len(alt) == 1) and ref[0] == alt[0]:
        return None if abs(len(ref) - len(alt)) <= MAX_INDEL else "long indel"
    return "MNP" if len(ref) == len(alt) else "complex"


def read_given_alleles(path: str | os.PathLike, contigs: Mapping[str, int],
                       ref_codes: Callable[[str], np.ndarray]) -> GivenAlleles:
    """The alleles of a VCF/BCF (plain, bgzipped), checked against the reference (contigs:
    name -> length; ref_codes(contig): its base codes, A0 C1 G2 T3 N4). Records are read
    first and checked a contig at a time, so that each contig's codes are fetched once."""
    path = os.fspath(path)
    given = GivenAlleles(path)
    try:
        vcf = pysam.VariantFile(path)
    except (OSError, ValueError) as e:
        raise _core.InputError(f"{path}: cannot read as VCF/BCF ({e})") from None
    # contig -> (record number, 0-based start, REF, ALTs, ID)
    rows: dict[str, list[tuple[int, int, str, tuple[str, ...], str]]] = {}
    n = 0
    with vcf:
        records = iter(vcf)
        while True:
            try:
                rec = next(records)
            except StopIteration:
                break
            except (OSError, ValueError) as e:
                raise _core.InputError(f"{path}: record {n + 1}: unreadable ({e})") from None
            n += 1
            if rec.chrom not in contigs:
                raise _core.InputError(f"{path}: record {n} ({rec.chrom}:{rec.pos}): contig "
                                       f"{rec.chrom} is not in the reference")
            rows.setdefault(rec.chrom, []).append(
                (n, rec.pos - 1, rec.ref.upper(), tuple(a.upper() for a in rec.alts or ()),
                 rec.id or ""))
    first_skip = None

    def skip(why: str, n: int, where: str) -> None:
        nonlocal first_skip
        given.skipped[why] = given.skipped.get(why, 0) + 1
        if first_skip is None or n < first_skip[0]:
            first_skip = (n, where)

    for contig, records_here in rows.items():
        codes = ref_codes(contig)
        ids: dict[tuple[int, str, str], list[str]] = {}  # each allele once, with every ID
        for n, start, ref, alts, rec_id in records_here:
            where = f"record {n} ({contig}:{start + 1})"
            if start + len(ref) > contigs[contig]:
                raise _core.InputError(f"{path}: {where}: REF runs past the contig's end "
                                       f"({contigs[contig]:,} bases)")
            actual = "".join(_BASES[min(int(c), 4)] for c in codes[start : start + len(ref)])
            # (a reference N stands for any IUPAC code the VCF writes there)
            if any(r != a and not (a == "N" and r not in "ACGT") for r, a in zip(ref, actual,
                                                                                  strict=True)):
                raise _core.InputError(f"{path}: {where}: REF {ref[:20]} differs from the "
                                       f"reference ({actual[:20]}); is it the same build?")
            if not alts:
                skip("no ALT", n, f"record {n} ({contig}:{start + 1} {ref}>.)")
            for alt in alts:
                if alt.startswith("<") or "[" in alt or "]" in alt or alt in ("*", "."):
                    why = "symbolic"
                elif set(alt) - set("ACGT") or set(ref) - set("ACGT"):
                    why = "non-ACGT"
                else:
                    allele = tuple(_core.normalise_allele(start, ref, alt, codes))
                    why = _kind(allele[1], allele[2]) if allele[1] != allele[2] else "not a change"
                if why is not None:
                    skip(why, n, f"record {n} ({contig}:{start + 1} {ref}>{alt})")
                else:
                    known = ids.setdefault(allele, [])
                    for one in rec_id.split(";") if rec_id else ():
                        if one not in known:
                            known.append(one)
        if ids:
            given.by_contig[contig] = sorted((*a, ";".join(v)) for a, v in ids.items())
    given.first_skipped = first_skip[1] if first_skip else ""
    return given
