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

Allele = tuple[int, str, str]  # 0-based position, REF, ALT (normalised)


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
        lo = bisect.bisect_left(alleles, (start, "", ""))
        hi = bisect.bisect_left(alleles, (end, "", ""))
        return alleles[lo:hi]

    def spans(self, gap: int) -> list[tuple[str, int, int]]:
        """(contig, start, end): the alleles' positions, those less than gap apart in one span."""
        out: list[tuple[str, int, int]] = []
        for contig, alleles in self.by_contig.items():
            for pos, _, _ in alleles:
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
    if len(ref) == 1 and len(alt) == 1:
        return None
    if (len(ref) == 1 or len(alt) == 1) and ref[0] == alt[0]:
        return None if abs(len(ref) - len(alt)) <= MAX_INDEL else "long indel"
    return "MNP" if len(ref) == len(alt) else "complex"


def read_given_alleles(path: str | os.PathLike, contigs: Mapping[str, int],
                       ref_codes: Callable[[str], np.ndarray]) -> GivenAlleles:
    """The alleles of a VCF/BCF (plain, bgzipped), checked against the reference (contigs:
    name -> length; ref_codes(contig): its base codes, A0 C1 G2 T3 N4)."""
    path = os.fspath(path)
    given = GivenAlleles(path)
    seen: dict[str, set[Allele]] = {}
    try:
        vcf = pysam.VariantFile(path)
    except (OSError, ValueError) as e:
        raise _core.InputError(f"{path}: cannot read as VCF/BCF ({e})") from None
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
            where = f"{path}: record {n} ({rec.chrom}:{rec.pos})"
            if rec.chrom not in contigs:
                raise _core.InputError(f"{where}: contig {rec.chrom} is not in the reference")
            ref = rec.ref.upper()
            start = rec.pos - 1
            if start + len(ref) > contigs[rec.chrom]:
                raise _core.InputError(f"{where}: REF runs past the contig's end "
                                       f"({contigs[rec.chrom]:,} bases)")
            codes = ref_codes(rec.chrom)
            actual = "".join(_BASES[min(int(c), 4)] for c in codes[start : start + len(ref)])
            if ref != actual:
                raise _core.InputError(f"{where}: REF {ref[:20]} differs from the reference "
                                       f"({actual[:20]}); is it the same reference build?")
            for alt in rec.alts or ():
                alt = alt.upper()
                why = None
                if alt.startswith("<") or "[" in alt or "]" in alt or alt in ("*", "."):
                    why = "symbolic"
                elif set(alt) - set("ACGT") or set(ref) - set("ACGT"):
                    why = "non-ACGT"
                else:
                    allele = tuple(_core.normalise_allele(start, ref, alt, codes))
                    why = _kind(allele[1], allele[2]) if allele[1] != allele[2] else "not a change"
                if why is not None:
                    given.skipped[why] = given.skipped.get(why, 0) + 1
                    if not given.first_skipped:
                        given.first_skipped = f"record {n} ({rec.chrom}:{rec.pos} {ref}>{alt})"
                    continue
                seen.setdefault(rec.chrom, set()).add(allele)
    given.by_contig = {c: sorted(s) for c, s in seen.items()}
    return given
