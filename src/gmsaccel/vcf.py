"""VCF and gVCF output: lines the engine formatted (records, reference blocks), or records
formatted here through pysam; bgzipped on threads with the tabix index built while writing,
beside a temporary name that is renamed into place on success, so that a failed run leaves
nothing at the final path."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations_with_replacement
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pysam

from gmsaccel import __version__, _core

NON_REF = "<*>"
TBI_MAX_POS = 1 << 29  # positions a .tbi can index
CSI_MIN_SHIFT = 14  # tabix --csi's default
DEFAULT_LOW_QUAL = 20.0


def genotype_index(alleles: Sequence[int]) -> int:
    """Position of an unphased genotype in a VCF Number=G list (the VCF 4.2 ordering): for ploidy
    1 the allele itself; for ploidy 2 (j, k) with j <= k is k * (k + 1) / 2 + j."""
    a = sorted(alleles)
    if len(a) == 1:
        return a[0]
    if len(a) == 2:
        j, k = a
        return k * (k + 1) // 2 + j
    raise ValueError(f"ploidy {len(a)} is not supported")


def genotypes(n_alleles: int, ploidy: int) -> list[tuple[int, ...]]:
    """All unphased genotypes over n_alleles alleles, in VCF Number=G order."""
    if ploidy == 1:
        return [(a,) for a in range(n_alleles)]
    if ploidy == 2:
        gts = list(combinations_with_replacement(range(n_alleles), 2))
        return sorted(gts, key=genotype_index)
    raise ValueError(f"ploidy {ploidy} is not supported")


def ploidy_of_pl(n_pl: int, n_alleles: int) -> int:
    if n_pl == n_alleles:
        return 1
    if n_pl == n_alleles * (n_alleles + 1) // 2:
        return 2
    raise ValueError(f"{n_pl} PL values do not fit {n_alleles} alleles at ploidy 1 or 2")


def extend_pl_non_ref(pl: Sequence[int], n_alleles: int, ploidy: int) -> list[int]:
    """PL over the alleles plus a trailing <*> allele. Nothing supports <*> (it was not called),
    so a genotype carrying it is scored as its least likely form with every <*> copy replaced by
    one of the called alleles: never more likely than any called genotype it could stand for,
    and the called genotype keeps PL 0."""
    if not pl:
        return []
    star = n_alleles
    out = []
    for gt in genotypes(n_alleles + 1, ploidy):
        if star not in gt:
            out.append(int(pl[genotype_index(gt)]))
            continue
        fixed = [a for a in gt if a != star]
        copies = len(gt) - len(fixed)
        worst = max(int(pl[genotype_index(fixed + list(rep))])
                    for rep in combinations_with_replacement(range(n_alleles), copies))
        out.append(worst)
    return out


def _gt_tuple(gt: Sequence[int]) -> tuple[int | None, ...]:
    return tuple(None if a is None or a < 0 else int(a) for a in gt)


def _ints(col: Any) -> np.ndarray:
    """A column as int64 (the formatters' type)."""
    return np.asarray(col, dtype=np.int64)


# A somatic record's per-ALT INFO values, as the engine's record dicts name them (the INFO key
# is the name upper-cased); those a record lacks (NLOD without a normal, POPAF and GERMQ
# without a germline resource, CONTQ without a contamination) are left out.
SOMATIC_INFO = ("tlod", "nlod", "popaf", "germq", "contq")


@dataclass(frozen=True)
class SomaticHeader:
    """What a somatic VCF's header says: the tumour's and normal's sample names (no normal:
    tumour-only) and the thresholds behind its filters."""

    tumour: str
    normal: str | None
    pass_tlod: float
    min_nlod: float
    max_normal_alod: float
    min_strand_p: float
    panel_of_normals: str | None = None  # its path
    germline_resource: str | None = None  # its path
    max_germline_posterior: float = 0.5
    contamination: float = 0.0  # the tumour's reads from another person
    max_contamination_posterior: float = 0.5
    # the share of a somatic allele's tumour fraction the normal shows (its tumour cells)
    tumour_in_normal: float = 0.0


class VcfWriter:
    """Writes a VCF 4.2 (gVCF with gvcf=True) for the given contigs and samples.

    Output '*.gz' is BGZF-compressed and tabix-indexed; '*.vcf' (or anything else) is plain text
    without an index; '-' is plain text on stdout. Files are written to PATH.tmp-PID.vcf[.gz]
    and renamed into place by close(), the index last (.tbi; .csi when a contig is longer than
    2^29 bases); abort(), or an exception inside a `with` block, removes them instead.
    """

    def __init__(self, path: str | os.PathLike, contigs: Sequence[tuple[str, int]],
                 samples: Sequence[str], reference: str | os.PathLike = "",
                 command_line: Sequence[str] | None = None, gvcf: bool = False,
                 low_qual: float = DEFAULT_LOW_QUAL, threads: int = 1,
                 somatic: SomaticHeader | None = None):
        self.path = os.fspath(path)
        self.gvcf = gvcf
        if somatic is not None and gvcf:
            raise ValueError("a somatic VCF is not a gVCF")
        self.somatic = somatic
        self.samples = list(samples)
        self.reference = os.fspath(reference) if reference else ""
        self.contigs = [(str(n), int(ln)) for n, ln in contigs]
        self._lengths = dict(self.contigs)
        self.compressed = self.path != "-" and self.path.endswith(".gz")
        # tabix's .tbi holds positions below 2^29; longer contigs (some plants, amphibians)
        # get a .csi, as `tabix --csi` would make
        self.index_suffix = ".csi" if any(n > TBI_MAX_POS for _, n in self.contigs) else ".tbi"
        if self.path == "-":
            self.tmp = "-"
        else:
            suffix = ".vcf.gz" if self.compressed else ".vcf"
            self.tmp = f"{self.path}.tmp-{os.getpid()}{suffix}"
        self.header = self._header(command_line, low_qual)
        self._closed = False
        self._committed = False
        self.records = 0
        # Records are formatted to text here (variants by pysam, reference blocks by the C++
        # formatter) and written in large pieces; a .gz is compressed on `threads` threads and
        # its tabix index built as its blocks are written.
        self._bgzf: _core.VcfBgzfOutput | None = None
        self._out: Any = None
        self._fasta: pysam.FastaFile | None = None
        self._pending: list[bytes] = []
        self._pending_beg: list[Any] = []  # each line's 0-based interval, for the index
        self._pending_end: list[Any] = []
        self._pending_contig = ""
        self._pending_chars = 0
        try:
            if self.tmp == "-":
                self._out = sys.stdout.buffer
            elif self.compressed:
                self._bgzf = _core.VcfBgzfOutput(
                    self.tmp, -1, max(1, threads), self.tmp + self.index_suffix,
                    CSI_MIN_SHIFT if self.index_suffix == ".csi" else 0)
            else:
                self._out = open(self.tmp, "wb")  # noqa: SIM115 - closed by close()/abort()
            if self._bgzf is not None:
                self._bgzf.write_header(str(self.header))
            else:
                self._out.write(str(self.header).encode())
        except BaseException:
            self.abort()  # no writer to abort later: its temporary files go now
            raise

    def _header(self, command_line: Sequence[str] | None, low_qual: float) -> pysam.VariantHeader:
        h = pysam.VariantHeader()  # starts with ##fileformat=VCFv4.2 and FILTER PASS
        h.add_line(f"##source=gmsaccel-{__version__}")
        if self.reference:
            h.add_line(f"##reference=file://{os.path.abspath(self.reference)}")
        if command_line:
            h.add_line("##gmsaccelCommand=" + " ".join(str(a) for a in command_line))
        for name, length in self.contigs:
            h.contigs.add(name, length=length)
        if self.somatic is not None:
            self._somatic_header(h)
            return h
        h.add_line(f'##FILTER=<ID=LowQual,Description="Low quality (QUAL < {low_qual:g})">')
        if self.gvcf:
            h.add_line('##ALT=<ID=*,Description="Any allele not already represented at this '
                       'position (gVCF reference blocks and unobserved alternatives)">')
        h.add_line('##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth over samples '
                   '(reads spanning the site)">')
        h.add_line('##INFO=<ID=MQ,Number=1,Type=Float,Description="RMS mapping quality of '
                   'the reads spanning the site">')
        if self.gvcf:
            h.add_line('##INFO=<ID=END,Number=1,Type=Integer,Description="Last position '
                       '(1-based, inclusive) of a reference block">')
        h.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
        h.add_line('##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Reads supporting each '
                   'allele (REF first)">')
        h.add_line('##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Reads spanning the '
                   'site (mean over a reference block)">')
        h.add_line('##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality '
                   '(minimum over a reference block)">')
        h.add_line('##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Phred-scaled genotype '
                   'likelihoods, normalised to 0 for the most likely genotype">')
        if self.gvcf:
            h.add_line('##FORMAT=<ID=MIN_DP,Number=1,Type=Integer,Description="Minimum depth '
                       'in a reference block">')
        for s in self.samples:
            h.add_sample(s)
        return h

    def _somatic_header(self, h: pysam.VariantHeader) -> None:
        """The header of somatic records (call.py's somatic mode): TLOD, NLOD, filters, AF."""
        sm = self.somatic
        assert sm is not None
        h.add_line(f"##tumor_sample={sm.tumour}")
        if sm.normal is not None:
            h.add_line(f"##normal_sample={sm.normal}")
        if sm.panel_of_normals is not None:
            h.add_line(f"##panel_of_normals=file://{os.path.abspath(sm.panel_of_normals)}")
            h.add_line('##FILTER=<ID=panel_of_normals,Description="The allele is in the panel '
                       'of normals (seen in normal samples: an artifact or a germline '
                       'polymorphism)">')
        h.add_line('##FILTER=<ID=weak_evidence,Description="The tumour\'s evidence of the '
                   f'allele is weak (TLOD < {sm.pass_tlod:g})">')
        if sm.germline_resource is not None:
            h.add_line(f"##germline_resource=file://{sm.germline_resource}")
        germline = []
        if sm.normal is not None:
            germline.append(f"the normal does not rule out a germline heterozygote (NLOD < "
                            f"{sm.min_nlod:g}) and shows the allele")
        if sm.germline_resource is not None:
            others = "somatic or from the contaminating reads" if sm.contamination > 0 \
                else "somatic"
            germline.append(f"the allele is more likely germline than {others} (posterior > "
                            f"{sm.max_germline_posterior:g}; GERMQ)")
        if germline:
            text = " or ".join(germline)
            h.add_line(f'##FILTER=<ID=germline,Description="{text[0].upper()}{text[1:]}">')
        if sm.contamination > 0:
            h.add_line(f"##contamination={sm.contamination:g}")
            h.add_line('##FILTER=<ID=contamination,Description="The allele is more likely from '
                       f'the reads of another person (a fraction {sm.contamination:g} of the '
                       f'tumour\'s) than from the tumour (posterior > '
                       f'{sm.max_contamination_posterior:g}; CONTQ)">')
        # what the normal is weighed against: lacking a somatic allele, or holding the
        # tumour's cells
        somatic_in_normal = "lacking the allele" if sm.tumour_in_normal == 0 else (
            f"showing the allele at {sm.tumour_in_normal:g} of its fraction in the tumour "
            "(the tumour's cells in the normal)")
        if sm.normal is not None:
            if sm.tumour_in_normal > 0:
                h.add_line(f"##tumour_in_normal={sm.tumour_in_normal!r}")  # (exact: run reads it)
            h.add_line('##FILTER=<ID=low_normal_depth,Description="Too few normal reads to rule '
                       f'out a germline heterozygote (NLOD < {sm.min_nlod:g}), none showing the '
                       'allele">')
            h.add_line('##FILTER=<ID=normal_artifact,Description="The normal\'s reads show the '
                       f'allele too (their log10 odds of it at its fitted fraction against '
                       f'{somatic_in_normal} >= {sm.max_normal_alod:g})">')
        h.add_line('##FILTER=<ID=strand_bias,Description="The tumour\'s reads of the ALT lie '
                   'on one strand more than its depth there explains (two-sided binomial '
                   f'p < {sm.min_strand_p:g})">')
        h.add_line('##FILTER=<ID=orientation_bias,Description="The tumour\'s reads of the ALT '
                   'come from one strand of their fragments (read strand and mate, as damage '
                   'before sequencing leaves them) more than its depth explains (two-sided '
                   f'binomial p < {sm.min_strand_p:g})">')
        h.add_line('##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth over samples '
                   '(reads spanning the site)">')
        h.add_line('##INFO=<ID=MQ,Number=1,Type=Float,Description="RMS mapping quality of '
                   'the reads spanning the site">')
        h.add_line('##INFO=<ID=TLOD,Number=A,Type=Float,Description="log10 likelihood ratio of '
                   'the tumour carrying the allele at its fitted fraction (FORMAT AF) against '
                   'not at all; QUAL is 10 times it">')
        if sm.normal is not None:
            h.add_line('##INFO=<ID=NLOD,Number=A,Type=Float,Description="log10 likelihood ratio '
                       f'of the normal {somatic_in_normal} against carrying one copy">')
        if sm.germline_resource is not None:
            h.add_line('##INFO=<ID=POPAF,Number=A,Type=Float,Description="-log10 of the '
                       'population frequency of the allele in the germline resource (taken '
                       'within [f, 1 - f], f the frequency assumed for alleles the resource '
                       'lacks)">')
            reads = "the tumour's and the normal's reads" if sm.normal is not None \
                else "the tumour's reads"
            h.add_line('##INFO=<ID=GERMQ,Number=A,Type=Float,Description="Phred-scaled '
                       'posterior probability that the allele is germline (-10 log10 P, at most '
                       f'990; high: not), from POPAF and {reads}">')
        if sm.contamination > 0:
            h.add_line('##INFO=<ID=CONTQ,Number=A,Type=Float,Description="Phred-scaled '
                       'posterior probability that the allele comes from the contaminating '
                       'reads, against germline, somatic and no allele at all (-10 log10 P, at '
                       'most 990; high: not)">')
        h.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype (the tumour: '
                   'the reference and the alleles it carries; the normal: reference)">')
        h.add_line('##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Reads supporting each '
                   'allele (REF first)">')
        h.add_line('##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Reads spanning the '
                   'site">')
        h.add_line('##FORMAT=<ID=AF,Number=A,Type=Float,Description="Fraction of the sample\'s '
                   'reads from the allele, fitted to their likelihoods">')
        h.add_line('##FORMAT=<ID=SB,Number=4,Type=Integer,Description="The reads of AD by '
                   'strand: REF forward, REF reverse, ALT forward, ALT reverse">')
        for name in self.samples:
            h.add_sample(name)

    # -- records ---------------------------------------------------------------------------

    def _emit(self, contig: str, text: bytes, beg: Any, end: Any) -> None:
        """Lines of one contig with their intervals [beg, end) (sequences, one per line)."""
        if contig != self._pending_contig:
            self._flush()
            self._pending_contig = contig
        self._pending.append(text)
        self._pending_beg.append(beg)
        self._pending_end.append(end)
        self._pending_chars += len(text)
        if self._pending_chars >= 1 << 20:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        text = b"".join(self._pending)
        if self._bgzf is not None:
            beg = np.concatenate([np.asarray(b, dtype=np.int64) for b in self._pending_beg])
            end = np.concatenate([np.asarray(e, dtype=np.int64) for e in self._pending_end])
            self._bgzf.write_lines(self._pending_contig, text, beg, end)
        else:
            self._out.write(text)
        self._pending.clear()
        self._pending_beg.clear()
        self._pending_end.clear()
        self._pending_chars = 0

    def _check_pos(self, contig: str, start: int, end: int) -> None:
        length = self._lengths.get(contig)
        if length is None:
            raise ValueError(f"{self.path}: contig {contig!r} is not in the VCF header")
        if start < 0 or end > length or end <= start:
            raise ValueError(f"{self.path}: record {contig}:{start + 1}-{end} lies outside "
                             f"{contig} (length {length})")

    def write(self, contig: str, record: Mapping[str, Any]) -> None:
        """One variant record in the engine's form: pos (0-based), ref, alts, qual, filter, dp,
        mq, samples [{gt, ad, dp, gq, pl}] in sample order, and optionally id."""
        pos = int(record["pos"])
        ref = str(record["ref"])
        alts = [str(a) for a in record["alts"]]
        self._check_pos(contig, pos, pos + len(ref))
        alleles = [ref, *alts] + ([NON_REF] if self.gvcf else [])
        samples = record.get("samples") or []
        if len(samples) != len(self.samples):
            raise ValueError(f"{self.path}: record at {contig}:{pos + 1} has {len(samples)} "
                             f"samples, the header {len(self.samples)}")
        # pysam gives a record with a symbolic allele (<*>) an INFO END; stop keeps it right
        rec = self.header.new_record(contig=contig, start=pos, stop=pos + len(ref),
                                     alleles=alleles, qual=float(record["qual"]),
                                     filter=(record.get("filter") or "PASS").split(";"))
        if record.get("id"):
            rec.id = str(record["id"])
        if record.get("dp") is not None:
            rec.info["DP"] = int(record["dp"])
        if record.get("mq") is not None:
            rec.info["MQ"] = float(record["mq"])
        if self.somatic is not None:
            self._somatic_fields(rec, record, samples)
        else:
            self._genotype_fields(rec, alts, samples)
        # tabix's interval: POS-1 to END (pysam's END for a <*> record is pos + len(ref) too)
        self._emit(contig, str(rec).encode(), (pos,), (pos + len(ref),))
        self.records += 1

    def _genotype_fields(self, rec: Any, alts: Sequence[str],
                         samples: Sequence[Mapping[str, Any]]) -> None:
        n_alleles = 1 + len(alts)
        for name, s in zip(self.samples, samples, strict=True):
            call = rec.samples[name]
            call["GT"] = _gt_tuple(s["gt"])
            ad = [int(x) for x in s.get("ad", [])]
            pl = [int(x) for x in s.get("pl", [])]
            if self.gvcf:
                if ad:
                    ad.append(0)
                if pl:
                    pl = extend_pl_non_ref(pl, n_alleles, ploidy_of_pl(len(pl), n_alleles))
            if ad:
                call["AD"] = ad
            call["DP"] = int(s.get("dp", 0))
            call["GQ"] = int(s.get("gq", 0))
            if pl:
                call["PL"] = pl

    def _somatic_fields(self, rec: Any, record: Mapping[str, Any],
                        samples: Sequence[Mapping[str, Any]]) -> None:
        for key in SOMATIC_INFO:
            if record.get(key):
                rec.info[key.upper()] = [float(x) for x in record[key]]
        for name, s in zip(self.samples, samples, strict=True):
            call = rec.samples[name]
            call["GT"] = _gt_tuple(s["gt"])
            if s.get("ad"):
                call["AD"] = [int(x) for x in s["ad"]]
            call["DP"] = int(s.get("dp", 0))
            if s.get("af"):  # (NaN: a normal without reads here)
                call["AF"] = [None if math.isnan(float(x)) else float(x) for x in s["af"]]
            if s.get("sb"):
                call["SB"] = [int(x) for x in s["sb"]]

    def _check_spans(self, contig: str, beg: np.ndarray, end: np.ndarray) -> None:
        """Raises, naming the record, unless every [beg, end) is a non-empty part of contig."""
        if not len(beg):
            return
        length = self._lengths.get(contig)
        bad = np.flatnonzero((beg < 0) | (end <= beg) | (end > (length or 0)))
        if length is None or len(bad):
            i = int(bad[0]) if len(bad) else 0
            self._check_pos(contig, int(beg[i]), int(end[i]))  # raises

    def write_lines(self, contig: str, text: bytes, beg: Any, end: Any) -> None:
        """Records already formatted as VCF lines (the engine's, back to back, '\\n'-ended),
        each over the 0-based interval [beg, end) tabix gives it (POS-1 to END)."""
        beg = np.asarray(beg, dtype=np.int64)
        end = np.asarray(end, dtype=np.int64)
        self._check_spans(contig, beg, end)
        self._emit(contig, text, beg, end)
        self.records += len(beg)

    def write_gvcf_shard(self, contig: str, start: Any, end: Any, min_dp: Any, gq: Any, pl: Any,
                         dp: Any, codes: np.ndarray, record_lines: bytes, line_offsets: Any,
                         record_beg: Any, record_end: Any, covered: int) -> int:
        """A gVCF shard: reference blocks as columns (as write_block_columns takes them; their
        letters from codes, the contig's base codes) with the records' lines (back to back,
        cut at line_offsets) between them in order; blocks, or parts of them, at or before
        covered (the end of what came before) are left out. Returns the new covered end."""
        if not self.gvcf:
            raise ValueError("write_gvcf_shard needs a gVCF writer (gvcf=True)")

        starts, ends = _ints(start), _ints(end)
        self._check_spans(contig, starts, ends)
        rec_beg, rec_end = _ints(record_beg), _ints(record_end)
        self._check_spans(contig, rec_beg, rec_end)
        pl_rows = _ints(pl)
        if pl_rows.ndim != 2:
            pl_rows = pl_rows.reshape(len(starts), -1)
        text, beg, stop, covered = _core.format_gvcf_shard(
            contig, starts, ends, _ints(min_dp), _ints(gq), pl_rows,
            _ints(dp), codes, record_lines, _ints(line_offsets), rec_beg, rec_end,
            len(self.samples), int(covered))
        self._emit(contig, text, beg, stop)
        self.records += len(beg)
        return int(covered)

    def _ref_base(self, contig: str, start: int) -> str:
        if not self.reference:
            raise ValueError("write_block needs the reference base or a reference FASTA")
        if self._fasta is None:
            self._fasta = pysam.FastaFile(self.reference)
        return self._fasta.fetch(contig, start, start + 1).upper() or "N"

    def write_block(self, contig: str, start: int, end: int, min_dp: int, gq: int,
                    pl: Sequence[int], *, dp: int | None = None, ref: str | None = None) -> None:
        """A gVCF reference block over [start, end) (0-based) for every sample: ALT <*>,
        INFO END, FORMAT GT 0/0 (0 when pl has 2 values: haploid), DP, GQ, MIN_DP, PL over
        (REF, <*>). ref is the base at start (read from the reference FASTA when omitted)."""
        self.write_block_columns(contig, [start], [end], [min_dp], [gq], [list(pl)],
                                 [min_dp if dp is None else dp], [ref])

    def write_block_columns(self, contig: str, start: Any, end: Any, min_dp: Any, gq: Any,
                            pl: Any, dp: Any, bases: Sequence[str | None] | None = None) -> None:
        """Reference blocks given as columns (numpy arrays or sequences; pl one row per block),
        ascending and disjoint, each written as write_block writes one. bases holds each block's
        first base (None, or a None entry: read from the reference FASTA)."""
        if not self.gvcf:
            raise ValueError("write_block needs a gVCF writer (gvcf=True)")

        starts, ends = _ints(start), _ints(end)
        if not len(starts):
            return
        self._check_spans(contig, starts, ends)
        if isinstance(bases, str) and len(bases) == len(starts):
            letters = bases
        else:
            refs = bases if bases is not None else [None] * len(starts)
            letters = "".join((ref or self._ref_base(contig, int(b)))[0]
                              for b, ref in zip(starts.tolist(), refs, strict=True))
        pl_rows = _ints(pl).reshape(len(starts), -1)
        text = _core.format_reference_blocks(contig, starts, ends, _ints(min_dp), _ints(gq),
                                             pl_rows, _ints(dp), letters, len(self.samples))
        self._emit(contig, text, starts, ends)
        self.records += len(starts)

    # -- lifecycle -------------------------------------------------------------------------

    def _close_handles(self, flush: bool = True) -> None:
        """Closes the output (writing what is pending when flush: not after a failure, when
        the writer may no longer take it)."""
        try:
            if flush:
                self._flush()
            else:
                self._pending.clear()
        finally:
            if self._bgzf is not None:
                self._bgzf.close()  # stops its threads; finish() has written the file
            elif self._out is sys.stdout.buffer:
                self._out.flush()
            elif self._out is not None:
                self._out.close()
        if self._fasta is not None:
            self._fasta.close()
            self._fasta = None

    def close(self) -> None:
        """Finishes the file: EOF block and index (for .gz), renamed into place, the index
        last."""
        self.finish()
        self.commit()

    def finish(self) -> None:
        """Completes the file (and index) under its temporary name; commit() renames it."""
        if self._closed:
            return
        self._closed = True
        try:
            self._flush()
            if self._bgzf is not None:
                self._bgzf.finish()
            self._close_handles()
        except BaseException:
            with contextlib.suppress(Exception):
                self._close_handles(flush=False)
            self._remove_tmp()
            raise

    def _targets(self) -> list[tuple[str, str]]:
        """(temporary, final) paths commit() renames, in order."""
        if self.tmp == "-":
            return []
        pairs = [(self.tmp, self.path)]
        if self.compressed:
            pairs.append((self.tmp + self.index_suffix, self.path + self.index_suffix))
        return pairs

    def check_commit(self) -> None:
        """Raises if commit() could not rename into place (a directory in the way, a parent
        that cannot be written), so that a caller with several files checks them all first."""
        for _, final in self._targets():
            if Path(final).is_dir():
                raise OSError(f"{final}: is a directory; cannot write the output there")
            parent = Path(final).resolve().parent
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OSError(f"{final}: cannot write in {parent}")

    def uncommit(self) -> None:
        """Removes the files commit() put in place (another output of the same call failed)."""
        if self._committed:
            for _, final in self._targets():
                Path(final).unlink(missing_ok=True)

    def commit(self) -> None:
        """Renames the finished file into place, its index last (once; after finish()). If the
        index cannot follow, the data goes too: a visible file always has its index."""
        if not self._closed:
            raise RuntimeError(f"{self.path}: commit() before finish()")
        if self._committed:
            return
        self._committed = True
        placed: list[str] = []
        try:
            if self.compressed:
                for suffix in (".tbi", ".csi"):  # never pair new data with an old index
                    Path(self.path + suffix).unlink(missing_ok=True)
            for tmp, final in self._targets():
                os.replace(tmp, final)
                placed.append(final)
        except BaseException:
            for final in placed:
                Path(final).unlink(missing_ok=True)
            self._remove_tmp()
            raise

    def _remove_tmp(self) -> None:
        if self.tmp != "-":
            for p in (self.tmp, self.tmp + ".tbi", self.tmp + ".csi"):
                Path(p).unlink(missing_ok=True)

    def abort(self) -> None:
        """Abandons the output: removes the temporary files; the final path is not touched."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(Exception):  # best effort: the files go regardless
                self._close_handles(flush=False)
        self._committed = True  # nothing left to rename
        self._remove_tmp()

    def __enter__(self) -> VcfWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
