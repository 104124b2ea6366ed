"""Python API of the variant caller: Caller.call / write_vcf / pileup over sorted, indexed BAMs.

The work is split into shards (`shard_size`: sized from the regions alone, between 50 kbp and
1 Mbp); shards run on a thread pool (the engine releases the GIL) or an executor and come back
in shard order, so the output is the same for any thread count. Every call into the C++ engine
goes through the `_engine_*` functions below.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pysam

from gmsaccel import _core
from gmsaccel.align import INDEX_SUFFIX, Index, cuda_module, open_index, select_device
from gmsaccel.alleles import GivenAlleles, read_given_alleles, sites_file
from gmsaccel.gvcf import BlockArrays, reference_block_arrays
from gmsaccel.ploidy import PloidyMap, read_ploidy_file, sample_sexes
from gmsaccel.scaleout import Executor, ordered_submit
from gmsaccel.vcf import DEFAULT_LOW_QUAL, SOMATIC_INFO, SomaticHeader, VcfWriter

# Shards hold at most SHARD_SIZE bases. Regions shorter than TARGET_SHARDS of those are cut
# finer, down to MIN_SHARD_SIZE, so that a bacterial genome (5.7 Mbp: 6 shards of 1 Mbp) still
# gives every thread of a GPU node, or worker of a cluster, work of its own. The size depends on
# the regions only, never on the threads, so the output stays the same for any thread count.
SHARD_SIZE = 1_000_000
MIN_SHARD_SIZE = 50_000
TARGET_SHARDS = 128
LINE_VCF, LINE_GVCF = 1, 2  # the engine's record lines (call_region's vcf_lines flags)
MAX_BLOCK = 0  # gVCF reference blocks are not split by length (bands and shards bound them)
SOMATIC_OPTIONS = ("min_tlod", "pass_tlod", "min_nlod", "max_normal_alod", "min_strand_p",
                   "max_germline_posterior", "af_not_in_resource", "log10_somatic_prior",
                   "contamination", "max_contamination_posterior", "tumour_in_normal")
# Somatic candidates: 3 reads, from 1% of the depth. An allele of 2 reads can hardly pass
# (at 60x TLOD 6.3 takes 4 reads of base quality 30 or 3 of 40; 2 of 40 give 5.2), and 2-read
# errors in either sample made most of the windows; a fraction of 5% (germline calling's)
# would hide every allele under 5% at any depth, where deep panels find them.
SOMATIC_CANDIDATES = {"min_support": 3, "min_fraction": 0.01}
GIVEN_GAP = 5_000  # given alleles closer than this are called in one region (reads loaded once)

RegionSpec = str | Sequence[tuple[str, int, int]] | None

# ---------------------------------------------------------------------------------------------
# engine adapter: the only place that calls _core's calling functions


def engine_available() -> bool:
    """Whether this build of gmsaccel._core has the variant calling engine."""
    return hasattr(_core, "call_region")


def _require_engine() -> None:
    if not engine_available():
        raise RuntimeError("variant calling is unavailable in this build "
                           "(gmsaccel._core has no call_region); rebuild gmsaccel")


def _engine_call_region(bams: list[str], reference: str, ref_codes: np.ndarray, contig: str,
                        start: int, end: int, options: Mapping[str, Any]
                        ) -> tuple[list[dict], dict, dict | None]:
    """(records, stats, reference confidence: with options' reference_confidence, else None)."""
    result = _core.call_region(bams, reference, ref_codes, contig, start, end, **options)
    confidence = dict(result[2]) if len(result) > 2 else None
    return list(result[0]), dict(result[1]), confidence


def _engine_pileup(bam: str, contig: str, start: int, end: int, reference: str,
                   options: Mapping[str, Any]) -> dict:
    return dict(_core.pileup(bam, contig, start, end, reference=reference, **options))


@dataclass(frozen=True)
class AlignmentInfo:
    path: str
    contigs: list[tuple[str, int]]
    sample: str


def _sample_from_name(path: str) -> str:
    name = Path(path).name
    for ext in (".bam", ".cram", ".sam"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def _open_alignments(path: str, reference: str) -> AlignmentInfo:
    """Header facts of an indexed, coordinate-sorted BAM/CRAM. Errors name the file."""
    if not os.path.exists(path):
        raise _core.InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise _core.InputError(f"{path}: is a directory, not a BAM/CRAM file")
    if hasattr(_core, "AlignmentSource"):
        src = _core.AlignmentSource(path, reference=reference)
        return AlignmentInfo(path, [(str(n), int(ln)) for n, ln in src.contigs], str(src.sample))
    import pysam

    try:
        f = pysam.AlignmentFile(path, reference_filename=reference or None)
    except (ValueError, OSError) as e:
        raise _core.InputError(f"{path}: not a SAM/BAM/CRAM file ({e})") from None
    with f:
        hd = f.header.to_dict()
        so = hd.get("HD", {}).get("SO")
        if so is not None and so != "coordinate":
            raise _core.InputError(f"{path}: not coordinate-sorted (@HD SO:{so}); "
                                   f"run 'samtools sort'")
        if not f.has_index():
            raise _core.InputError(f"{path} has no index: run 'samtools index {path}'")
        sample = next((rg["SM"] for rg in hd.get("RG", []) if rg.get("SM")), None)
        return AlignmentInfo(path, list(zip(f.references, map(int, f.lengths), strict=True)),
                             sample or _sample_from_name(path))


# ---------------------------------------------------------------------------------------------
# regions


@dataclass(frozen=True, order=True)
class Region:
    """[start, end) of contig, 0-based half-open."""

    contig: str
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.contig}:{self.start + 1}-{self.end}"


def _parse_int(text: str, what: str) -> int:
    t = text.replace(",", "").replace("_", "").strip()
    if not t.isdigit():
        raise ValueError(what)
    return int(t)


def parse_region(text: str, contigs: Mapping[str, int]) -> Region:
    """'chr', 'chr:start-end' (1-based, inclusive, commas allowed) or 'chr:start' (to the end)."""
    text = text.strip()
    if text in contigs:
        return Region(text, 0, contigs[text])
    name, sep, span = text.rpartition(":")
    if not sep or not name:
        raise _core.InputError(f"region {text}: unknown contig {text!r}")
    if name not in contigs:
        raise _core.InputError(f"region {text}: unknown contig {name!r}")
    length = contigs[name]
    bad = f"region {text}: expected CONTIG, CONTIG:START-END or CONTIG:START"
    try:
        if "-" in span:
            a, b = span.split("-", 1)
            start, end = _parse_int(a, bad), _parse_int(b, bad)
        else:
            start, end = _parse_int(span, bad), length
    except ValueError:
        raise _core.InputError(bad) from None
    if start < 1 or end < start:
        raise _core.InputError(f"region {text}: start must be at least 1 and at most the end")
    if end > length:
        raise _core.InputError(f"region {text}: outside contig {name} (length {length:,})")
    return Region(name, start - 1, end)


def check_region(region: Region, contigs: Mapping[str, int], label: str | None = None) -> Region:
    label = label or str(region)
    if region.contig not in contigs:
        raise _core.InputError(f"region {label}: unknown contig {region.contig!r}")
    length = contigs[region.contig]
    if region.start < 0 or region.end <= region.start:
        raise _core.InputError(f"region {label}: empty or negative interval")
    if region.end > length:
        raise _core.InputError(f"region {label}: outside contig {region.contig} "
                               f"(length {length:,})")
    return region


def read_bed(path: str | os.PathLike, contigs: Mapping[str, int]) -> list[Region]:
    """Regions of a BED file (0-based, half-open; header, track and comment lines skipped)."""
    import gzip

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise _core.InputError(f"{path}: no such file")
    opener = gzip.open if path.endswith(".gz") else open
    out = []
    with opener(path, "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 3:
                f = line.split()
            try:
                r = Region(f[0], int(f[1]), int(f[2]))
            except (IndexError, ValueError):
                raise _core.InputError(f"{path} line {lineno}: not a BED record") from None
            out.append(check_region(r, contigs, f"{r.contig}:{r.start}-{r.end} "
                                                f"({path} line {lineno})"))
    if not out:
        raise _core.InputError(f"{path}: no regions")
    return out


def resolve_regions(region: RegionSpec | Region, contigs: Sequence[tuple[str, int]]
                    ) -> list[Region]:
    """Regions to call, in reference order, overlapping ones merged."""
    lengths = dict(contigs)
    if region is None:
        regs = [Region(n, 0, ln) for n, ln in contigs if ln > 0]
    elif isinstance(region, Region):
        regs = [check_region(region, lengths)]
    elif isinstance(region, str):
        regs = [parse_region(region, lengths)]
    else:
        regs = []
        for item in region:
            if isinstance(item, str):
                regs.append(parse_region(item, lengths))
            elif isinstance(item, Region):
                regs.append(check_region(item, lengths))
            else:
                c, s, e = item
                regs.append(check_region(Region(str(c), int(s), int(e)), lengths))
    order = {n: i for i, (n, _) in enumerate(contigs)}
    regs.sort(key=lambda r: (order[r.contig], r.start, r.end))
    merged: list[Region] = []
    for r in regs:
        if merged and merged[-1].contig == r.contig and r.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Region(r.contig, last.start, max(last.end, r.end))
        else:
            merged.append(r)
    return merged


def shard_size(regions: Iterable[Region]) -> int:
    """Bases per shard for these regions: about TARGET_SHARDS shards in all (a multiple of
    10 kbp), within [MIN_SHARD_SIZE, SHARD_SIZE] (a SHARD_SIZE set below the minimum wins)."""
    total = sum(r.end - r.start for r in regions)
    even = -(-total // TARGET_SHARDS)
    return min(SHARD_SIZE, max(MIN_SHARD_SIZE, -(-even // 10_000) * 10_000))


def shards(regions: Iterable[Region], size: int | None = None) -> list[Region]:
    """Regions cut into pieces of at most size (default shard_size(regions)) bases."""
    regions = list(regions)
    size = size or shard_size(regions)
    return [Region(r.contig, s, min(s + size, r.end))
            for r in regions for s in range(r.start, r.end, size)]


# ---------------------------------------------------------------------------------------------
# variants and summaries


def variant_type(ref: str, alt: str) -> str | None:
    """SNV, MNP, insertion or deletion (by allele lengths); None for symbolic alleles."""
    if alt.startswith("<") or alt in ("*", ".") or not alt:
        return None
    if len(ref) == len(alt):
        return "SNV" if len(ref) == 1 else "MNP"
    return "insertion" if len(alt) > len(ref) else "deletion"


_TRANSITIONS = {frozenset("AG"), frozenset("CT")}


def is_transition(ref: str, alt: str) -> bool:
    return frozenset((ref.upper(), alt.upper())) in _TRANSITIONS


@dataclass
class VariantSummary:
    """Counts over PASS records: alleles by type, Ti/Tv of SNVs, called genotypes het/hom.
    A record whose genotypes carry none of its ALTs (a given allele genotyped 0/0 or ./.) counts
    in ref_only, not by type. Filtered records count by each filter they fail (filters)."""

    records: int = 0
    passed: int = 0
    low_qual: int = 0
    ref_only: int = 0
    types: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("SNV", "insertion", "deletion", "MNP"), 0))
    transitions: int = 0
    transversions: int = 0
    het: int = 0
    hom: int = 0
    filters: dict[str, int] = field(default_factory=dict)

    def add(self, ref: str, alts: Sequence[str], filt: str | None,
            gts: Iterable[Sequence[int]] = ()) -> None:
        self.records += 1
        if filt not in (None, "PASS", "."):
            self.low_qual += filt == "LowQual"
            for name in filt.replace(",", ";").split(";"):  # (pysam's keys joined with ',')
                self.filters[name] = self.filters.get(name, 0) + 1
            return
        self.passed += 1
        gts = [[int(a) for a in gt if a is not None and int(a) >= 0] for gt in gts]
        if gts and all(not gt or max(gt) == 0 for gt in gts):
            self.ref_only += 1
            return
        for alt in alts:
            t = variant_type(ref, alt)
            if t is None:
                continue
            self.types[t] += 1
            if t == "SNV":
                if is_transition(ref, alt):
                    self.transitions += 1
                else:
                    self.transversions += 1
        for called in gts:
            if not called or max(called) == 0:
                continue
            if len(set(called)) > 1:
                self.het += 1
            else:
                self.hom += 1

    def merge(self, other: VariantSummary) -> None:
        """Adds other's counts to these."""
        for f in fields(self):
            if f.name in ("types", "filters"):
                mine = getattr(self, f.name)
                for t, n in getattr(other, f.name).items():
                    mine[t] = mine.get(t, 0) + n
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def titv(self) -> float | None:
        return self.transitions / self.transversions if self.transversions else None

    @property
    def het_hom(self) -> float | None:
        return self.het / self.hom if self.hom else None

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "pass": self.passed, "low_qual": self.low_qual,
                "ref_only": self.ref_only,
                "variants": dict(self.types), "transitions": self.transitions,
                "transversions": self.transversions, "titv": self.titv, "het": self.het,
                "hom": self.hom, "het_hom_ratio": self.het_hom,
                "filters": dict(sorted(self.filters.items(), key=lambda kv: (-kv[1], kv[0])))}


def summarize_vcf(path: str | os.PathLike) -> dict[str, Any]:
    """VariantSummary of a VCF file (all samples)."""
    import pysam

    s = VariantSummary()
    with pysam.VariantFile(os.fspath(path)) as vf:
        for rec in vf:
            filt = ",".join(rec.filter.keys()) or None
            gts = [smp.get("GT") or () for smp in rec.samples.values()]
            s.add(rec.ref, [a for a in (rec.alts or ()) if a != "<*>"], filt, gts)
    return s.as_dict()


@dataclass
class Variant:
    """One called record. pos is 1-based; per-sample arrays have one row per sample: gt
    (n_samples x ploidy, -1 = missing), ad (n_samples x alleles), dp, gq, pl
    (n_samples x genotypes)."""

    contig: str
    pos: int
    ref: str
    alts: list[str]
    qual: float
    filter: str
    info: dict[str, Any]  # DP, MQ; somatic records also TLOD and NLOD (one per ALT)
    gt: np.ndarray
    ad: np.ndarray
    dp: np.ndarray
    gq: np.ndarray
    pl: np.ndarray
    id: str = ""  # the given alleles' IDs (e.g. rsIDs), ';'-separated
    # Alleles each sample was called with (a ploidy map's haploid or absent regions), where
    # fewer than the rows hold; None: all of them.
    sample_ploidy: np.ndarray | None = None
    af: np.ndarray | None = None  # somatic records: each sample's fitted fraction of each ALT
    sb: np.ndarray | None = None  # and its REF and ALT reads by strand (samples x 4)

    @property
    def types(self) -> list[str | None]:
        return [variant_type(self.ref, a) for a in self.alts]

    @classmethod
    def from_record(cls, contig: str, rec: Mapping[str, Any], ploidy: int,
                    sample_ploidy: Sequence[int] | None = None) -> Variant:
        """ploidy: the rows' width; a sample called with fewer alleles (a ploidy map's haploid
        or absent regions: sample_ploidy, where known) has its own count in sample_ploidy, and
        -1 past its GT and PL."""
        samples = rec.get("samples") or []
        somatic = "tlod" in rec
        n_al = 1 + len(rec["alts"])
        n_gt = n_al if ploidy == 1 else n_al * (n_al + 1) // 2
        gt = np.full((len(samples), ploidy), -1, dtype=np.int8)
        ad = np.zeros((len(samples), n_al), dtype=np.int32)
        pl = np.full((len(samples), n_gt), -1, dtype=np.int32)
        own = np.full(len(samples), ploidy, dtype=np.int8)
        for i, s in enumerate(samples):
            g = list(s.get("gt", []))[:ploidy]
            gt[i, : len(g)] = [-1 if a is None else a for a in g]
            p = list(s.get("pl", []))[:n_gt]
            pl[i, : len(p)] = p
            a = list(s.get("ad", []))[:n_al]
            ad[i, : len(a)] = a
            if sample_ploidy is not None:
                own[i] = sample_ploidy[i]
            else:  # a lone missing allele is ploidy 0 ('.'); otherwise the GT's own length
                own[i] = 0 if len(g) == 1 and (g[0] is None or g[0] < 0) and not p else len(g)
        info: dict[str, Any] = {k.upper(): int(rec[k]) for k in ("dp", "mq")
                                if rec.get(k) is not None}
        af = sb = None
        if somatic:
            info.update({key.upper(): [float(x) for x in rec[key]] for key in SOMATIC_INFO
                         if rec.get(key)})
            af = np.array([list(s.get("af", [])) for s in samples], dtype=np.float64)
            af = af.reshape(len(samples), n_al - 1)
            sb = np.array([list(s.get("sb", [])) for s in samples], dtype=np.int32)
            sb = sb.reshape(len(samples), 4)
        return cls(contig, int(rec["pos"]) + 1, str(rec["ref"]), [str(a) for a in rec["alts"]],
                   float(rec["qual"]), str(rec.get("filter") or "PASS"), info, gt, ad,
                   np.array([s.get("dp", 0) for s in samples], dtype=np.int32),
                   np.array([s.get("gq", 0) for s in samples], dtype=np.int32), pl,
                   str(rec.get("id") or ""), own, af, sb)

    def to_record(self) -> dict[str, Any]:
        """The engine's record form (0-based pos), as VcfWriter.write takes it."""
        def sample(i: int) -> dict[str, Any]:
            k = self.gt.shape[1] if self.sample_ploidy is None else int(self.sample_ploidy[i])
            out = {"gt": self.gt[i, :k].tolist() if k else [-1], "ad": self.ad[i].tolist(),
                   "dp": int(self.dp[i]), "gq": int(self.gq[i]),
                   "pl": [int(x) for x in self.pl[i] if x >= 0]}
            if self.af is not None:
                out["af"] = self.af[i].tolist()
            if self.sb is not None:
                out["sb"] = self.sb[i].tolist()
            return out

        rec = {"pos": self.pos - 1, "id": self.id, "ref": self.ref, "alts": list(self.alts),
               "qual": self.qual,
               "filter": self.filter, "dp": self.info.get("DP"), "mq": self.info.get("MQ"),
               "samples": [sample(i) for i in range(self.gt.shape[0])]}
        if self.af is not None:  # (a somatic record: TLOD always, the others where written)
            rec.update({key: list(self.info.get(key.upper(), [])) for key in SOMATIC_INFO})
        return rec


# ---------------------------------------------------------------------------------------------
# the caller

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Sequence[T], threads: int) -> Iterator[R]:
    """fn over items on `threads` threads, results in item order, at most 2 x threads in
    flight (so a slow consumer does not pile up results)."""
    if threads <= 1 or len(items) <= 1:
        for it in items:
            yield fn(it)
        return
    ex = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gmsaccel-call")
    pending: deque[Future[R]] = deque()
    try:
        for it in items:
            pending.append(ex.submit(fn, it))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


# Callers made by _call_shard_in_worker, one per spec and process.
_worker_callers: dict[tuple, Caller] = {}
_worker_lock = threading.Lock()


def _cut(start: int, end: int, cuts: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) cut at the positions of cuts inside it."""
    edges = [start, *(c for c in cuts if start < c < end), end]
    return list(zip(edges, edges[1:], strict=False))


def _call_shard_in_worker(spec: tuple, bams: list[str], shard: Region,
                          gvcf: bool, lines: int = 0,
                          sample_ploidy: list[int] | None = None) -> _ShardResult:
    """One shard where an executor runs it (another process, another node): the Caller for
    spec is opened once per process and kept. Paths must name the same files there."""
    with _worker_lock:
        caller = _worker_callers.get(spec)
        if caller is None:
            reference, ploidy, device, min_mapq, min_baseq, max_depth, engine, _ = spec
            caller = Caller(reference, ploidy, device, min_mapq, min_baseq, max_depth, threads=1,
                            **dict(engine))
            _worker_callers[spec] = caller
    return caller._call_shard(bams, shard, gvcf, lines, sample_ploidy)


_NO_POSITIONS = np.zeros(0, np.int64)
_NO_LINES = np.zeros(1, np.int64)  # line offsets of no lines


@dataclass
class _ShardResult:
    shard: Region
    records: list[dict]
    stats: dict
    blocks: BlockArrays | None = None
    ploidy: int = 2  # the (gVCF's one) sample's here: its blocks' width; 0: none at all
    sample_ploidy: list[int] | None = None  # every sample's here, under a ploidy map
    # When lines were asked for: the records' summary, their intervals, and their VCF and
    # gVCF lines back to back (the gVCF's cut at gvcf_offsets), made on the calling thread.
    summary: VariantSummary | None = None
    rec_beg: np.ndarray = field(default_factory=lambda: _NO_POSITIONS)
    rec_end: np.ndarray = field(default_factory=lambda: _NO_POSITIONS)
    vcf_text: bytes = b""
    gvcf_text: bytes = b""
    gvcf_offsets: np.ndarray = field(default_factory=lambda: _NO_LINES)
    # gVCF: the block the shard ends on (held back to join the next shard's first block),
    # and the shard's lines without it, as format_gvcf_shard gives them (text, each line's
    # beg and end, covered end) when nothing before the shard reaches into it.
    tail: BlockArrays | None = None
    gvcf_body: tuple[bytes, np.ndarray, np.ndarray, int] | None = None



def _open_reference(reference: str) -> tuple[Index | None, pysam.FastaFile | None]:
    """A .gxi index (mmap), or the FASTA through htslib's faidx (making its .fai like samtools
    does) so that calling never builds a minimizer table; a FASTA faidx cannot read (plain
    gzip) falls back to an in-memory index."""
    if reference.endswith(INDEX_SUFFIX) or os.path.exists(reference + INDEX_SUFFIX):
        return open_index(reference), None
    if not os.path.isfile(reference):
        raise _core.InputError(f"{reference}: no such file")
    try:
        return None, pysam.FastaFile(reference)
    except (OSError, ValueError):
        return open_index(reference), None


def resolve_call_device(device: str) -> tuple[str, int, bool]:
    """Like align.resolve_device (auto, cpu, gpu, gpu:N; GMSACCEL_GPU_EMULATE=1 for host
    emulation), for the read/haplotype likelihoods: registers the GPU haplotype backend with
    _core and returns (kind, GPU index or -1, emulate). 'auto' falls back to the CPU when the
    build's kernels or engine lack GPU haplotype costs."""
    kind, index, emulate = select_device(device)
    if kind == "cpu":
        return kind, index, emulate
    cuda = cuda_module()
    if not hasattr(cuda, "haplotype_backend") or not hasattr(_core, "set_haplotype_backend"):
        if device == "auto":
            return "cpu", -1, False
        raise RuntimeError(f"--device {device}: this build of gmsaccel has no GPU haplotype "
                           "kernels (rebuild it); use --device cpu")
    _core.set_haplotype_backend(cuda.haplotype_backend())
    return kind, index, emulate


# Callers whose reference loader a forked child must reset (the loader's thread stays behind).
_CALLERS: weakref.WeakSet[Caller] = weakref.WeakSet()


def _reset_callers_in_child() -> None:
    for caller in list(_CALLERS):
        caller._reset_reference_loader()


os.register_at_fork(after_in_child=_reset_callers_in_child)


class Caller:
    """Calls SNVs and indels jointly over one or more samples (one BAM/CRAM per sample) against
    a reference FASTA (or its .gxi index). Options: ploidy 1 or 2, read filters (min_mapq,
    min_baseq, max_depth), threads; further engine options (min_support, min_fraction,
    low_qual, min_qual, simd) as keywords. alleles= a VCF of alleles to genotype whatever the
    reads say (each gets a record: 0/0 where a sample lacks it, ./. where no read covers it;
    see alleles.py), with alleles_only=True writing only the records holding one.
    ploidy_file= (bcftools' --ploidy-file format) with sex= ('M', or {'child': 'M', ...}) gives
    each sample its ploidy by region (a male's chrX, a female's chrY; see ploidy.py).
    somatic=True calls a tumour (the first BAM) against its matched normal (a second BAM, or
    none: tumour-only): one record per allele the tumour carries at any fraction, with TLOD,
    NLOD, its filters (README) and each sample's AF and SB, from the thresholds min_tlod,
    pass_tlod, min_nlod, max_normal_alod and min_strand_p (_core.SOMATIC_THRESHOLDS by
    default) and candidates from SOMATIC_CANDIDATES unless given; panel_of_normals= a VCF of
    alleles seen in normal samples, whose somatic records fail panel_of_normals;
    germline_resource= a bgzipped, indexed VCF of population allele frequencies (INFO/AF, as
    gnomAD's), from which each somatic record gets POPAF and GERMQ and fails germline where its
    posterior probability of being germline exceeds max_germline_posterior (alleles it lacks
    get af_not_in_resource; log10_somatic_prior weighs the somatic alternative), and with
    contamination= (the fraction of the tumour's reads from another person, as
    gmsaccel.contamination estimates it) records likelier from that person's alleles fail
    contamination (max_contamination_posterior). tumour_in_normal= (with a normal: the
    share of a somatic allele's tumour fraction the normal shows where it holds tumour cells,
    as gmsaccel.tumour_in_normal estimates it) weighs the normal against that share rather
    than against none (NLOD, normal_artifact). An Index
    already loaded for `reference` may be passed as index= to skip loading it again. With
    executor= (a dask.distributed Client, or any concurrent.futures executor) the shards run
    there instead of on local threads, each worker opening the reference and BAMs by the same
    paths; the output is the same."""

    def __init__(self, reference: str | os.PathLike, ploidy: int = 2, device: str = "auto",
                 min_mapq: int = 0, min_baseq: int = 13, max_depth: int = 1000,
                 threads: int = 1, *, index: Index | None = None,
                 executor: Executor | None = None,
                 ploidy_file: str | os.PathLike | None = None,
                 sex: str | Mapping[str, str] | None = None, **engine_options: Any):
        if ploidy not in (1, 2):
            raise ValueError(f"ploidy must be 1 or 2, not {ploidy}")
        if min_mapq < 0 or min_baseq < 0 or max_depth < 1:
            raise ValueError("min_mapq and min_baseq must be >= 0 and max_depth >= 1")
        self.reference = os.fspath(reference)
        self.device, gpu_index, emulate = resolve_call_device(device)
        self.index = index
        self._fasta_file = None
        if index is None:
            self.index, self._fasta_file = _open_reference(self.reference)
        # the FASTA itself (CRAM decoding, ##reference); none when given only an index
        self.fasta = self.reference
        if self.reference.endswith(INDEX_SUFFIX):  # the FASTA beside REF.fa.gxi, if it is there
            beside = self.reference[: -len(INDEX_SUFFIX)]
            self.fasta = beside if Path(beside).is_file() else ""
        if self.index is not None:
            self.contigs = [(c.name, c.length) for c in self.index.contigs]
        else:
            self.contigs = list(zip(self._fasta_file.references, self._fasta_file.lengths,
                                    strict=True))
        self._contig_id = {n: i for i, (n, _) in enumerate(self.contigs)}
        self.ploidy = ploidy
        self.threads = max(1, int(threads))
        self.filters = {"min_mapq": int(min_mapq), "min_baseq": int(min_baseq),
                        "max_depth": int(max_depth)}
        unknown = set(engine_options) - {"min_support", "min_fraction", "low_qual", "min_qual",
                                         "simd", "alleles", "alleles_only", "somatic",
                                         "panel_of_normals", "germline_resource",
                                         *SOMATIC_OPTIONS}
        if unknown:
            raise TypeError(f"unknown Caller options: {', '.join(sorted(unknown))}")
        self.low_qual = float(engine_options.get("low_qual", DEFAULT_LOW_QUAL))
        self.somatic = bool(engine_options.get("somatic", False))
        thresholds = {k: float(engine_options[k]) for k in SOMATIC_OPTIONS if k in engine_options}
        if thresholds and not self.somatic:
            raise ValueError(f"{', '.join(sorted(thresholds))}: somatic thresholds go with "
                             "somatic=True")
        for what in ("panel_of_normals", "germline_resource"):
            if engine_options.get(what) is not None and not self.somatic:
                raise ValueError(f"{what} goes with somatic=True")
        self.somatic_thresholds = t = {**_core.SOMATIC_THRESHOLDS, **thresholds}
        if not all(math.isfinite(v) for v in t.values()) or not (
                0 <= t["min_tlod"] <= t["pass_tlod"] and t["max_normal_alod"] > 0
                and 0 <= t["min_strand_p"] <= 1 and 0 < t["max_germline_posterior"] < 1
                and 0 < t["af_not_in_resource"] < 1 and t["log10_somatic_prior"] < 0
                and 0 <= t["contamination"] < 0.5 and 0 < t["max_contamination_posterior"] < 1
                and 0 <= t["tumour_in_normal"] < 1):
            raise ValueError("somatic thresholds: finite, 0 <= min_tlod <= pass_tlod, "
                             "max_normal_alod > 0, min_strand_p in [0, 1], "
                             "max_germline_posterior, max_contamination_posterior and "
                             "af_not_in_resource in (0, 1), contamination in [0, 0.5), "
                             "tumour_in_normal in [0, 1) and log10_somatic_prior < 0; got " +
                             ", ".join(f"{k}={v:g}" for k, v in sorted(thresholds.items())))
        if self.somatic and (engine_options.get("alleles") is not None
                             or ploidy_file is not None):
            raise ValueError("somatic calling takes neither given alleles nor a ploidy file")
        if self.somatic and ploidy != 2:
            raise ValueError("ploidy does not apply to somatic calling (alleles are weighed at "
                             "any fraction)")
        engine = {k: v for k, v in engine_options.items()
                  if k not in ("alleles", "alleles_only", "somatic", "panel_of_normals",
                               "germline_resource")}
        if self.somatic:
            engine = {**SOMATIC_CANDIDATES, **engine}
        self.options = {"ploidy": ploidy, **self.filters, **engine}
        if self.device == "gpu":  # only then: engines without the device option still run
            self.options.update(device=gpu_index, device_emulate=emulate)
        self._codes: OrderedDict[str, Future[np.ndarray]] = OrderedDict()
        self._codes_lock = threading.Lock()
        self._loader: ThreadPoolExecutor | None = None
        # contig -> the contig whose shards come next in this run (read ahead of them)
        self._read_ahead: dict[str, str] = {}
        _CALLERS.add(self)
        self.executor = executor
        # Ploidy by region and sex (ploidy.py): read now; each shard's samples get theirs.
        self.sex = sex
        self.ploidy_map: PloidyMap | None = None
        if ploidy_file is not None:
            self.ploidy_map = read_ploidy_file(ploidy_file, dict(self.contigs), ploidy)
        elif sex is not None:
            raise ValueError("sex goes with a ploidy file")
        # Given alleles: read (and checked) now, before any work.
        self.alleles_only = bool(engine_options.get("alleles_only", False))
        alleles = engine_options.get("alleles")
        if self.alleles_only and alleles is None:
            raise ValueError("alleles_only needs alleles (a VCF of the alleles to genotype)")
        self.given: GivenAlleles | None = None
        spec_options, stamp = dict(engine_options), None
        if alleles is not None:
            self.given = read_given_alleles(alleles, dict(self.contigs), self.ref_codes)
            # Workers keep their Caller per spec: the file's size and time are in it, so that a
            # sites file rewritten between runs is read again, not remembered.
            spec_options["alleles"] = os.path.abspath(os.fspath(alleles))
            st = os.stat(spec_options["alleles"])
            stamp = (st.st_mtime_ns, st.st_size)
        # A panel of normals (somatic): alleles seen in normal samples, read and normalised as
        # given alleles are; a somatic record of one fails panel_of_normals.
        self.panel: GivenAlleles | None = None
        panel = engine_options.get("panel_of_normals")
        if panel is not None:
            self.panel = read_given_alleles(panel, dict(self.contigs), self.ref_codes)
            spec_options["panel_of_normals"] = os.path.abspath(os.fspath(panel))
            st = os.stat(spec_options["panel_of_normals"])
            stamp = (*(stamp or ()), st.st_mtime_ns, st.st_size)
        # A germline resource (somatic): checked now, read by position shard by shard (it may
        # hold a population's hundreds of millions of alleles).
        self.germline_resource: str | None = None
        resource = engine_options.get("germline_resource")
        if resource is None and ("af_not_in_resource" in engine_options
                                 or engine_options.get("contamination")):
            raise ValueError("af_not_in_resource and contamination go with germline_resource "
                             "(they weigh its population frequencies)")
        if resource is not None:
            self.germline_resource = sites_file(resource)
            _core.check_germline_resource(self.germline_resource, [c for c, _ in self.contigs])
            spec_options["germline_resource"] = self.germline_resource
            st = os.stat(self.germline_resource)
            stamp = (*(stamp or ()), st.st_mtime_ns, st.st_size)
        # How another process makes the same Caller, for shards sent to an executor (paths
        # absolute: workers run in directories of their own).
        self._spec = (os.path.abspath(self.reference), ploidy, device, self.filters["min_mapq"],
                      self.filters["min_baseq"], self.filters["max_depth"],
                      tuple(sorted(spec_options.items())), stamp)

    # -- inputs ----------------------------------------------------------------------------

    def ref_codes(self, contig: str) -> np.ndarray:
        """Base codes of a whole contig (A0 C1 G2 T3 N4). Contigs are read on a thread of
        their own, and during a run the contig its shards come to next is read ahead of them,
        so that the calling threads do not wait a second per chromosome; the three most
        recent are kept."""
        with self._codes_lock:
            codes = self._codes.get(contig)
            if codes is None:
                codes = self._codes[contig] = self._codes_loader().submit(self._read_codes,
                                                                        contig)
            else:
                self._codes.move_to_end(contig)
            after = self._read_ahead.get(contig)
            if after is not None and after not in self._codes:
                self._codes[after] = self._codes_loader().submit(self._read_codes, after)
            while len(self._codes) > 3:
                self._codes.popitem(last=False)
        try:
            return codes.result()
        except BaseException:
            with self._codes_lock:  # not remembered: a later shard tries again
                if self._codes.get(contig) is codes:
                    del self._codes[contig]
            raise

    def _reset_reference_loader(self) -> None:
        """In a forked child: the loader's thread did not come along, nor may its lock be free."""
        self._codes_lock = threading.Lock()
        self._codes = OrderedDict((c, f) for c, f in self._codes.items()
                                  if f.done() and not f.exception())
        self._loader = None

    def _codes_loader(self) -> ThreadPoolExecutor:
        if self._loader is None:
            self._loader = ThreadPoolExecutor(max_workers=1,
                                              thread_name_prefix="gmsaccel-reference")
        return self._loader

    def _read_codes(self, contig: str) -> np.ndarray:
        if self.index is not None:
            length = dict(self.contigs)[contig]
            return np.ascontiguousarray(self.index.fetch(self._contig_id[contig], 0, length),
                                        dtype=np.uint8)
        return _core.fasta_codes(self.reference, contig)

    def regions(self, region: RegionSpec | Region = None) -> list[Region]:
        """The regions to call. With alleles_only and no region, only the given alleles'
        neighbourhoods: a panel of sites on a whole genome reads the reads there alone (each
        site's records are the same as a whole-genome run's, as for any shard)."""
        if region is None and self.alleles_only and self.given is not None:
            spans = sorted(self.given.spans(GIVEN_GAP), key=lambda s: self._contig_id[s[0]])
            return [Region(c, s, e) for c, s, e in spans]
        return resolve_regions(region, self.contigs)

    def check_inputs(self, bams: Sequence[str | os.PathLike],
                     regions: Sequence[Region] | None = None) -> list[str]:
        """Opens every BAM and checks its contigs against the reference: each contig called
        (every @SQ when regions is None) must be in the FASTA with the same length. Returns
        the sample names (one per BAM, distinct)."""
        if not bams:
            raise ValueError("no BAM/CRAM files given")
        if self.somatic and len(bams) > 2:
            raise _core.InputError(f"somatic calling takes a tumour BAM and at most its normal's; "
                                   f"got {len(bams)}")
        lengths = dict(self.contigs)
        used = None if regions is None else {r.contig for r in regions}
        samples: dict[str, str] = {}
        for b in bams:
            info = _open_alignments(os.fspath(b), self.fasta)
            for name, length in info.contigs:
                if used is not None and name not in used:
                    continue
                if name not in lengths:
                    raise _core.InputError(f"{info.path}: contig {name} (length {length:,}) is "
                                           f"not in the reference {self.reference}")
                if lengths[name] != length:
                    raise _core.InputError(
                        f"{info.path}: contig {name} has length {length:,} but "
                        f"{lengths[name]:,} in the reference {self.reference}")
            if info.sample in samples:
                raise _core.InputError(f"{info.path}: sample {info.sample!r} is also the sample "
                                       f"of {samples[info.sample]}; give each BAM its own "
                                       f"sample (@RG SM)")
            samples[info.sample] = info.path
        return list(samples)

    def _check_pair(self, bams: Sequence[str]) -> None:
        if self.somatic and len(bams) == 1 and self.somatic_thresholds["tumour_in_normal"] > 0:
            raise ValueError("tumour_in_normal (the tumour's cells in the normal) needs a normal "
                             "BAM")

    # -- work ------------------------------------------------------------------------------

    def _call_shard(self, bams: list[str], shard: Region, gvcf: bool,
                    lines: int = 0, sample_ploidy: list[int] | None = None) -> _ShardResult:
        """One shard's records and (gvcf) reference blocks. lines: the records come with their
        VCF lines (LINE_VCF) and gVCF lines (LINE_GVCF), and the shard with their summary, made
        here rather than on the thread that writes the file."""
        codes = self.ref_codes(shard.contig)
        options = dict(self.options)
        if lines:  # the records as lines and arrays, not objects
            options["vcf_lines"] = lines
            options["as_lines"] = True
        shard_ploidy = sample_ploidy[0] if sample_ploidy else self.ploidy
        if gvcf and shard_ploidy == 0:  # (a female's chrY: no blocks, nothing to call)
            gvcf = False
        elif gvcf:  # from the candidates' own pileup: no second pass over the reads
            options["reference_confidence"] = True
        if sample_ploidy is not None:  # (a ploidy map's, for these samples' sexes)
            options["sample_ploidy"] = list(sample_ploidy)
        if self.somatic:  # the tumour first; its normal, if any, second
            options["somatic_tumour"] = 0
            options["somatic_normal"] = 1 if len(bams) == 2 else -1
            if self.panel is not None:  # (records are the shard's own positions only)
                options["panel"] = [a[:3] for a in self.panel.near(shard.contig, shard.start,
                                                                   shard.end)]
            if self.germline_resource is not None:  # (read by the engine, shard by shard)
                options["resource"] = self.germline_resource
        if self.given is not None:  # those the shard's windows may reach too
            reach = _core.CANDIDATE_PAD  # candidates this far beyond a shard shape its windows
            options["given"] = self.given.near(shard.contig, shard.start - reach,
                                               shard.end + reach)
            options["given_only"] = self.alleles_only
        records, stats, confidence = _engine_call_region(bams, self.fasta, codes, shard.contig,
                                                         shard.start, shard.end, options)
        records = sorted((r for r in records if shard.start <= int(r["pos"]) < shard.end),
                         key=lambda r: (int(r["pos"]), r["ref"], list(r["alts"])))
        packed = stats.pop("lines", None)
        if packed is None and lines:  # an engine that gives record objects only
            packed = _pack_records(shard.contig, records, lines)
        result = _ShardResult(shard, records, stats, ploidy=shard_ploidy,
                              sample_ploidy=list(sample_ploidy) if sample_ploidy else None)
        if packed is not None:
            result.summary = VariantSummary(**packed["summary"])
            result.rec_beg, result.rec_end = packed["beg"], packed["end"]
            result.vcf_text, result.gvcf_text = packed["vcf"], packed["gvcf"]
            result.gvcf_offsets = packed["gvcf_offsets"]
        else:
            result.rec_beg, result.rec_end = _record_spans(records)
        blocks = None
        if gvcf:
            if confidence is None:
                raise RuntimeError("the calling engine gave no reference confidence for a gVCF")
            gq, pl, depth = confidence["gq"], confidence["pl"], confidence["depth"]
            n = len(gq)
            if n == 0:  # (no reads: the engine's empty arrays say no width; the shard's ploidy)
                pl = np.zeros((0, 3 if shard_ploidy == 2 else 2), dtype=np.int64)
            start = int(confidence["start"]) if n else shard.start
            spans = np.column_stack((result.rec_beg, result.rec_end))
            blocks = reference_block_arrays(start, gq, pl, depth, spans, MAX_BLOCK)
            if start > shard.start or start + n < shard.end:  # positions the pileup left out
                blocks = _pad_blocks(shard, start, start + n, spans, blocks, shard_ploidy)
            result.blocks = blocks
            if lines & LINE_GVCF:
                if len(blocks) and int(blocks.end[-1]) == shard.end:
                    result.tail = blocks.take(slice(-1, None))
                    result.blocks = blocks = blocks.take(slice(None, -1))
                result.gvcf_body = _core.format_gvcf_shard(
                    shard.contig, *_block_columns(blocks), codes, result.gvcf_text,
                    result.gvcf_offsets, result.rec_beg, result.rec_end, len(bams), shard.start)
        return result

    def somatic_header(self, samples: Sequence[str]) -> SomaticHeader | None:
        """What a somatic VCF of these samples (tumour, then normal if any) says in its header;
        None unless somatic."""
        if not self.somatic:
            return None
        t = self.somatic_thresholds
        return SomaticHeader(samples[0], samples[1] if len(samples) > 1 else None,
                             t["pass_tlod"], t["min_nlod"], t["max_normal_alod"],
                             t["min_strand_p"],
                             self.panel.path if self.panel is not None else None,
                             self.germline_resource, t["max_germline_posterior"],
                             t["contamination"], t["max_contamination_posterior"],
                             t["tumour_in_normal"] if len(samples) > 1 else 0.0)

    def _sexes(self, samples: Sequence[str]) -> list[str]:
        """Each sample's sex under the ploidy map (checked), or [] without one."""
        return sample_sexes(self.sex, list(samples), self.ploidy_map) if self.ploidy_map else []

    def _results(self, bams: list[str], regions: list[Region], gvcf: bool,
                 lines: int = 0, sexes: Sequence[str] = ()) -> Iterator[_ShardResult]:
        pm = self.ploidy_map
        if pm is not None:  # shards never straddle a change of ploidy
            lengths = dict(self.contigs)
            regions = [Region(r.contig, a, b) for r in regions
                       for a, b in _cut(r.start, r.end, pm.boundaries(r.contig,
                                                                       lengths[r.contig]))]
        work = shards(regions)
        order = list(dict.fromkeys(s.contig for s in work))
        self._read_ahead = dict(zip(order, order[1:], strict=False))
        ploidies = [[pm.ploidy(s.contig, s.start, sex) for sex in sexes] if pm else None
                    for s in work]
        if self.executor is not None:
            bams = [os.path.abspath(b) for b in bams]  # (workers run elsewhere)
            return ordered_submit(self.executor, _call_shard_in_worker,
                                  [(self._spec, bams, s, gvcf, lines, p)
                                   for s, p in zip(work, ploidies, strict=True)])
        return ordered_map(lambda sp: self._call_shard(bams, sp[0], gvcf, lines, sp[1]),
                           list(zip(work, ploidies, strict=True)), self.threads)

    def call(self, bams: Sequence[str | os.PathLike] | str | os.PathLike,
             region: RegionSpec | Region = None) -> Iterator[Variant]:
        """Variants over the region(s) (default: the whole reference), sorted. Inputs are
        checked before this returns; the calling happens as the iterator is consumed."""
        bam_list = [os.fspath(bams)] if isinstance(bams, (str, os.PathLike)) else \
            [os.fspath(b) for b in bams]
        regions = self.regions(region)
        self._check_pair(bam_list)
        samples = self.check_inputs(bam_list, None if region is None else regions)
        sexes = self._sexes(samples)  # (checked now, not when the iterator is consumed)
        width = self.ploidy
        if self.ploidy_map is not None:
            width = max(width, *(r.ploidy for r in self.ploidy_map.rules))
        _require_engine()

        def gen() -> Iterator[Variant]:
            try:
                for res in self._results(bam_list, regions, gvcf=False, sexes=sexes):
                    for rec in res.records:
                        yield Variant.from_record(res.shard.contig, rec, width,
                                                  res.sample_ploidy)
            finally:
                _close_kept_files()

        return gen()

    def pileup(self, bam: str | os.PathLike, region: str | Region | tuple[str, int, int],
               check: bool = True, read_groups: Sequence[str] = (),
               group_at: Sequence[int] = ()) -> dict[str, np.ndarray]:
        """Per-position counts over one region: base_counts (n,5) A,C,G,T,N, base_qual_sums
        (n,5), deletions, insertions, depth, start (0-based), plus ref_codes (n,).
        check=False: the BAM's contigs were checked already (check_inputs), as by a caller
        that piles up many regions of it. read_groups: also group_base_counts (groups,
        len(group_at), 5), each one's base counts at the positions group_at (0-based, in the
        region), from the same pass over the reads."""
        regs = self.regions([region] if isinstance(region, tuple) else region)
        if len(regs) != 1:
            raise ValueError("pileup takes one region")
        r = regs[0]
        if check:
            self.check_inputs([os.fspath(bam)], regs)
        if not hasattr(_core, "pileup"):
            _require_engine()
        filters = dict(self.filters)
        if read_groups:
            filters["read_groups"] = list(read_groups)
            filters["group_at"] = [int(x) for x in group_at]
        out = _engine_pileup(os.fspath(bam), r.contig, r.start, r.end, self.fasta, filters)
        start = int(out.get("start", r.start))
        out["ref_codes"] = self.ref_codes(r.contig)[start : start + len(out["depth"])]
        return out

    def write_vcf(self, bams: Sequence[str | os.PathLike] | str | os.PathLike,
                  out: str | os.PathLike, region: RegionSpec | Region = None, gvcf: bool = False,
                  command_line: Sequence[str] | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  gvcf_out: str | os.PathLike | None = None) -> dict[str, Any]:
        """Calls and writes a VCF (gVCF with reference blocks when gvcf=True: one BAM only).
        gvcf_out: also a gVCF there, from the same pass (out stays a plain VCF).
        '.gz' output is bgzipped and tabix-indexed; nothing is left at `out` on failure.
        progress(done, total) is called with reference bases done after each shard is written.
        Returns a summary: variants by type, Ti/Tv, het/hom, read counts."""
        bam_list = [os.fspath(bams)] if isinstance(bams, (str, os.PathLike)) else \
            [os.fspath(b) for b in bams]
        out = os.fspath(out)
        if gvcf and gvcf_out is not None:
            raise ValueError("gvcf_out goes with a plain VCF at out (gvcf=False)")
        vcf_path = None if gvcf else out
        gvcf_path = out if gvcf else (os.fspath(gvcf_out) if gvcf_out is not None else None)
        regions = self.regions(region)
        if gvcf_path is not None and self.alleles_only:
            raise ValueError("a gVCF covers every position: it does not go with alleles_only")
        if gvcf_path is not None and len(bam_list) != 1:
            raise _core.InputError("gVCF output takes one BAM (one sample); "
                                   f"got {len(bam_list)}")
        if self.somatic and gvcf_path is not None:
            raise ValueError("somatic calling writes no gVCF")
        self._check_pair(bam_list)
        samples = self.check_inputs(bam_list, None if region is None else regions)
        sexes = self._sexes(samples)  # before any file is opened
        somatic = self.somatic_header(samples)
        for path in (vcf_path, gvcf_path):
            if path is None or path == "-":
                continue
            parent = Path(path).resolve().parent
            if not parent.is_dir():
                raise _core.InputError(f"{path}: directory {parent} does not exist")
            if Path(path).is_dir():
                raise _core.InputError(f"{path}: is a directory")
        if vcf_path is not None and gvcf_path is not None and \
                (vcf_path == gvcf_path or Path(vcf_path).resolve() == Path(gvcf_path).resolve()):
            raise _core.InputError(f"{gvcf_path}: the VCF and the gVCF need paths of their own")
        _require_engine()
        summary = VariantSummary()
        loads = {"loaded": 0, "filtered": 0, "depth_capped": 0}
        gpu_fallbacks = 0  # cost batches the GPU had no room for (run on the CPU)
        stages: dict[str, float] = {}  # thread-seconds by stage, over all shards
        covered = ("", 0)  # end of the last record written: a deletion reaching into the next
        # shard hides that shard's reference blocks up to its end (no overlapping records)
        total_bp = sum(r.end - r.start for r in regions)
        done_bp = 0
        writers: list[VcfWriter] = []
        try:
            vw = gw = None
            if vcf_path is not None:
                vw = VcfWriter(vcf_path, self.contigs, samples, self.fasta, command_line,
                               low_qual=self.low_qual, threads=self.threads, somatic=somatic)
                writers.append(vw)
            if gvcf_path is not None:
                gw = VcfWriter(gvcf_path, self.contigs, samples, self.fasta, command_line,
                               gvcf=True, low_qual=self.low_qual, threads=self.threads)
                writers.append(gw)
            lines = (LINE_VCF if vw else 0) | (LINE_GVCF if gw else 0)
            results = self._results(bam_list, regions, gw is not None, lines=lines,
                                    sexes=sexes)
            stitch = _GvcfStitcher(gw, self.ref_codes) if gw is not None else None
            for res in results:
                for k in loads:
                    loads[k] += int(res.stats.get(k, 0))
                for k, v in res.stats.get("stage_seconds", {}).items():
                    stages[k] = stages.get(k, 0.0) + float(v)
                gpu_fallbacks += int(res.stats.get("gpu_fallbacks", 0))
                contig = res.shard.contig
                if stitch is not None:  # a block held back that this shard does not continue
                    covered = (covered[0], stitch.flush_unless_continued(res.shard, covered[1],
                                                                         res.ploidy))
                if contig != covered[0]:
                    covered = (contig, 0)
                # A shard a call: its lines were made on its calling thread.
                if vw is not None and len(res.rec_beg):
                    vw.write_lines(contig, res.vcf_text, res.rec_beg, res.rec_end)
                if stitch is not None:
                    covered = (contig, stitch.write(res, covered[1]))
                if res.summary is not None:
                    summary.merge(res.summary)
                done_bp += res.shard.end - res.shard.start
                if progress is not None:
                    progress(done_bp, total_bp)
            if stitch is not None:
                stitch.flush_unless_continued(None, covered[1])
            for w in writers:  # every file complete and checked before any is put in place
                w.finish()
            for w in writers:
                w.check_commit()
            for w in writers:
                w.commit()
        except BaseException:
            for w in writers:
                if len(writers) > 1:
                    w.uncommit()  # one file of the pair already in place: it goes too
                w.abort()
            raise
        finally:
            _close_kept_files()
        return {**summary.as_dict(), "samples": samples, "reads": loads,
                "stage_seconds": stages, "gpu_fallbacks": gpu_fallbacks}



def _close_kept_files() -> None:
    """Closes the BAMs this thread kept open between shards (shards that ran here, inline): the
    run is over. Shards on pool threads close theirs as the pool's threads end."""
    if hasattr(_core, "close_kept_files"):
        _core.close_kept_files()


def _record_spans(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Each record's interval [pos, pos + len(ref))."""
    beg = np.array([int(r["pos"]) for r in records], dtype=np.int64)
    return beg, beg + np.array([len(r["ref"]) for r in records], dtype=np.int64)


def _pack_records(contig: str, records: list[dict], lines: int) -> dict[str, Any]:
    """What call_region(as_lines=True) gives, from record objects (an engine that makes only
    those): intervals, VCF and gVCF text (by the engine's formatter), summary."""
    summary = VariantSummary()
    for rec in records:
        summary.add(rec["ref"], rec["alts"], rec.get("filter"),
                    (s.get("gt", ()) for s in rec.get("samples", ())))
    beg, end = _record_spans(records)

    def text(gvcf: bool) -> list[bytes]:
        return list(_core.format_variant_records(contig, records, gvcf)) if records else []

    gvcf_lines = text(True) if lines & LINE_GVCF else []
    return {"beg": beg, "end": end,
            "vcf": b"".join(text(False)) if lines & LINE_VCF else b"",
            "gvcf": b"".join(gvcf_lines),
            "gvcf_offsets": np.cumsum([0, *map(len, gvcf_lines)], dtype=np.int64),
            "summary": {f.name: getattr(summary, f.name) for f in fields(summary)}}


def _block_columns(blocks: BlockArrays) -> tuple[np.ndarray, ...]:
    """The columns the formatters take: start, end, min_dp, gq, pl, dp."""
    return blocks.start, blocks.end, blocks.min_dp, blocks.gq, blocks.pl, blocks.dp


class _GvcfStitcher:
    """Writes the shards' gVCF in order. A shard's lines come made by its calling thread, less
    the block it ends on: that block is held back and joined to the next shard's first block
    where they meet in one GQ band, so that the blocks are those one shard would have made and
    the gVCF does not depend on where shards are cut. A shard that a record of the shard before
    reaches into (a deletion across the edge, which hides blocks) is made again here."""

    def __init__(self, w: VcfWriter, ref_codes: Callable[[str], np.ndarray]):
        self.w = w
        self.ref_codes = ref_codes
        self.tail: BlockArrays | None = None  # held back, from tail_shard
        self.tail_shard: Region | None = None
        self.tail_ploidy = 0  # its width: a shard of another ploidy does not continue it

    def _blocks(self, contig: str, blocks: BlockArrays, covered: int,
                res: _ShardResult | None = None) -> int:
        """Writes blocks (with res's records between them, if given); returns covered."""
        records = (res.gvcf_text, res.gvcf_offsets, res.rec_beg, res.rec_end) if res else \
            (b"", _NO_LINES, _NO_POSITIONS, _NO_POSITIONS)
        return self.w.write_gvcf_shard(contig, *_block_columns(blocks), self.ref_codes(contig),
                                       *records, covered)

    def flush_unless_continued(self, shard: Region | None, covered: int,
                               ploidy: int | None = None) -> int:
        """Writes the held-back block alone unless `shard` continues it (the next shard of its
        contig and ploidy, and blocks not cut by length); returns the covered end."""
        if self.tail is None or self.tail_shard is None:
            return covered
        if shard is not None and MAX_BLOCK == 0 and shard.contig == self.tail_shard.contig \
                and shard.start == self.tail_shard.end and ploidy in (None, self.tail_ploidy):
            return covered
        covered = self._blocks(self.tail_shard.contig, self.tail, covered)
        self.tail = self.tail_shard = None
        return covered

    def write(self, res: _ShardResult, covered: int) -> int:
        shard, contig = res.shard, res.shard.contig
        if res.ploidy == 0:  # no copy of this stretch in the sample: nothing to write
            return covered
        tail, self.tail, self.tail_shard = self.tail, None, None
        body = res.blocks if res.blocks is not None else BlockArrays.empty(
            res.tail.pl_min.shape[1] if res.tail is not None else 3 if res.ploidy == 2 else 2)
        if tail is not None and not len(body) and res.tail is not None:
            joined = tail.join_at_edge(res.tail)
            if len(joined) == 1:  # the shard is one block that continues the held-back one
                self.tail, self.tail_shard, self.tail_ploidy = joined, shard, res.ploidy
                return covered
        if covered > shard.start or res.gvcf_body is None:
            # a record before the shard reaches into it: the shard made again, that in view
            blocks = tail.join_at_edge(body) if tail is not None else body
            covered = self._blocks(contig, blocks, covered, res)
        else:
            text, beg, end, body_covered = res.gvcf_body
            skip = 0  # lines of the body written here instead (the first block, when joined)
            if tail is not None:
                first = body.take(slice(0, 1))
                head = tail.join_at_edge(first)
                if len(first) and len(head) == 1:
                    skip = 1
                else:
                    head = tail
                covered = self._blocks(contig, head, covered)
            if len(beg) > skip:
                cut = text.index(b"\n") + 1 if skip else 0
                self.w.write_lines(contig, text[cut:], beg[skip:], end[skip:])
                covered = max(covered, int(body_covered))
        self.tail, self.tail_shard, self.tail_ploidy = res.tail, shard, res.ploidy
        return covered


def _pad_blocks(shard: Region, lo: int, hi: int, spans: np.ndarray,
                blocks: BlockArrays, ploidy: int) -> BlockArrays:
    """Adds zero-coverage blocks for the parts of the shard outside the pileup's [lo, hi)."""
    n_pl = 3 if ploidy == 2 else 2
    parts = [blocks]
    for a, b in ((shard.start, lo), (hi, shard.end)):
        if a >= b:
            continue
        n = b - a
        parts.append(reference_block_arrays(a, np.zeros(n, np.int64),
                                            np.zeros((n, n_pl), np.int64),
                                            np.zeros(n, np.int64), spans, MAX_BLOCK))
    return BlockArrays.merge(parts)


def mean_depth(bam: str | os.PathLike, genome_length: int, sample_reads: int = 10_000,
               mapped: int | None = None, reference: str | None = None) -> float:
    """Mean depth estimated from the BAM index: mapped records (index statistics, or `mapped`
    where given: a CRAM index has none) times the mean aligned length of the first
    `sample_reads` mapped primary reads, over the genome length. reference: a CRAM's FASTA."""
    import pysam

    with pysam.AlignmentFile(os.fspath(bam), reference_filename=reference) as f:
        if mapped is None:
            if f.is_cram:  # its index has no statistics: 0 would be silently wrong
                raise ValueError(f"{bam}: a CRAM's mapped reads must be given (mapped=)")
            mapped = sum(s.mapped for s in f.get_index_statistics())
        n = total = 0
        for r in f.fetch(until_eof=True):
            if r.is_unmapped or r.is_secondary or r.is_supplementary:
                continue
            n += 1
            total += r.reference_length or 0
            if n >= sample_reads:
                break
    return mapped * (total / n) / genome_length if n and genome_length else 0.0
