"""Small, fast paired-end read simulator with planted truth variants.

Used by ``gmsaccel demo`` and by the test-suite. The hot paths (fragment sampling, read
extraction, reverse complement, sequencing errors) are numpy-vectorised; Python loops run only
over variants, haplotypes and reads (never over bases).

Read names follow dwgsim's convention so that alignment scorers can recover the truth::

    {contig}_{pos1}_{pos2}_{strand1}_{strand2}_{hap}_{hpos1}_{hpos2}_{nerr1}_{nerr2}:{pair}

``pos1``/``pos2`` are the 1-based leftmost *reference* positions of read 1 and read 2 (haplotype
coordinates mapped back through the planted indels; a read that starts inside inserted bases is
placed at the first reference base after the insertion), ``strand`` is 0 for forward and 1 for
reverse, ``hap`` the haplotype index within the contig, ``hpos1``/``hpos2`` the 1-based leftmost
haplotype positions and ``nerr1``/``nerr2`` the numbers of substitution errors introduced.
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.resources
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import pysam

__all__ = [
    "DemoFiles",
    "Haplotype",
    "Variant",
    "apply_variants",
    "bundled_genome_path",
    "left_normalize",
    "plant_variants",
    "read_fasta",
    "simulate_demo",
    "simulate_pairs",
    "write_fastq",
    "write_truth_vcf",
]

FastqRecord = tuple[str, str, str]
RefInput = Mapping[str, str] | Sequence[tuple[str, str]]

_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_COMP = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTNacgtn", b"TGCANtgcan", strict=True):
    _COMP[_a] = _b
_CODE = np.full(256, 4, dtype=np.uint8)  # base -> 0..3, anything else -> 4
for _i, _c in enumerate(b"ACGT"):
    _CODE[_c] = _i
    _CODE[_c + 32] = _i

MIN_SPACING = 50  # minimum distance between the reference spans of two planted variants
END_MARGIN = 60  # no variant within this many bases of a contig end
MAX_INDEL = 10


@dataclass(frozen=True)
class Variant:
    """One truth variant, VCF style (1-based ``pos``; indels anchored on the preceding base)."""

    contig: str
    pos: int
    ref: str
    alt: str
    genotype: tuple[int, ...]

    @property
    def end(self) -> int:
        """1-based inclusive end of the reference allele."""
        return self.pos + len(self.ref) - 1


@dataclass
class Haplotype:
    """One haplotype of one contig, with its piecewise map back to reference coordinates.

    Segment ``i`` starts at haplotype offset ``seg_hap[i]`` (0-based). Copied segments map base
    for base onto reference offset ``seg_ref[i] + (h - seg_hap[i])``; inserted segments
    (``seg_ins[i]``) map every base onto ``seg_ref[i]``, the first reference base after the
    insertion.
    """

    contig: str
    index: int
    seq: str
    seg_hap: np.ndarray
    seg_ref: np.ndarray
    seg_ins: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)

    def to_ref(self, hpos: np.ndarray | int) -> np.ndarray:
        """Map 0-based haplotype offsets to 0-based reference offsets (vectorised)."""
        h = np.asarray(hpos, dtype=np.int64)
        i = np.searchsorted(self.seg_hap, h, side="right") - 1
        return self.seg_ref[i] + np.where(self.seg_ins[i], 0, h - self.seg_hap[i])


class DemoFiles(NamedTuple):
    ref: Path
    reads1: Path
    reads2: Path
    truth: Path


# --------------------------------------------------------------------------------------------
# FASTA helpers


def _as_pairs(ref: RefInput) -> list[tuple[str, str]]:
    items = ref.items() if isinstance(ref, Mapping) else ref
    return [(str(name), str(seq).upper()) for name, seq in items]


def read_fasta(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Read a (possibly gzip/BGZF-compressed) FASTA file into ``[(name, SEQUENCE), ...]``."""
    with pysam.FastxFile(os.fspath(path)) as fh:
        return [(rec.name, rec.sequence.upper()) for rec in fh]


def _write_fasta(path: Path, contigs: Sequence[tuple[str, str]], width: int = 70) -> None:
    with open(path, "w") as fh:
        for name, seq in contigs:
            fh.write(f">{name}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width])
                fh.write("\n")


def bundled_genome_path() -> Path:
    """Path of the packaged phage lambda genome (NC_001416.1, BGZF-compressed FASTA)."""
    res = importlib.resources.files(__package__ or "gmsaccel").joinpath("data", "lambda.fa.gz")
    return Path(str(res))


# --------------------------------------------------------------------------------------------
# Variants


def left_normalize(seq: str, anchor: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Shift an anchored indel as far left as the reference allows.

    ``anchor`` is the 0-based offset of ``ref[0]`` in ``seq``; ``ref``/``alt`` share exactly the
    anchor base. Returns the new ``(anchor, ref, alt)``; SNVs come back unchanged. The shift
    stops before offset 0 so that the anchor always exists.
    """
    if len(ref) == len(alt):
        return anchor, ref, alt
    if len(ref) > len(alt):  # deletion of seq[s:e]
        s, e = anchor + 1, anchor + len(ref)
        while s - 1 >= 1 and seq[s - 1] == seq[e - 1]:
            s, e = s - 1, e - 1
        return s - 1, seq[s - 1 : e], seq[s - 1]
    ins = alt[1:]  # insertion of ``ins`` before seq[s]
    s = anchor + 1
    while s - 1 >= 1 and ins[-1] == seq[s - 1]:
        ins = seq[s - 1] + ins[:-1]
        s -= 1
    return s - 1, seq[s - 1], seq[s - 1] + ins


def _truncated_geometric(rng: np.random.Generator, n: int, p: float, kmax: int) -> np.ndarray:
    """Geometric lengths (support 1..kmax) by inverse CDF of the truncated distribution."""
    u = rng.random(n)
    q = 1.0 - p
    k = np.ceil(np.log1p(-u * (1.0 - q**kmax)) / math.log(q))
    return np.clip(k, 1, kmax).astype(np.int64)


def _genotypes(rng: np.random.Generator, n: int, ploidy: int) -> list[tuple[int, ...]]:
    if ploidy == 1:
        return [(1,)] * n
    hom = rng.random(n) < 1.0 / 3.0
    out: list[tuple[int, ...]] = []
    for is_hom in hom:
        if is_hom:
            out.append((1,) * ploidy)
            continue
        k = int(rng.integers(1, ploidy))  # carriers: 1..ploidy-1
        carriers = set(rng.choice(ploidy, size=k, replace=False).tolist())
        out.append(tuple(int(i in carriers) for i in range(ploidy)))
    return out


def _plant_contig(
    rng: np.random.Generator,
    name: str,
    seq: str,
    rate: float,
    indel_fraction: float,
    ploidy: int,
    min_spacing: int = MIN_SPACING,
) -> list[Variant]:
    length = len(seq)
    spacing = min_spacing + MAX_INDEL + 2
    usable = length - 2 * END_MARGIN
    if usable <= 0 or rate <= 0:
        return []
    n = int(rng.poisson(rate * length))
    n = min(n, usable // spacing)
    if n == 0:
        return []
    # n sorted anchors at least ``spacing`` apart, uniform over the admissible configurations
    slots = np.sort(rng.choice(usable - (n - 1) * spacing, size=n, replace=False))
    anchors = slots + np.arange(n) * spacing + END_MARGIN
    # reject anchors whose window (anchor .. anchor + MAX_INDEL) touches a non-ACGT base
    codes = _CODE[np.frombuffer(seq.encode(), dtype=np.uint8)]
    bad = np.concatenate([[0], np.cumsum(codes == 4)])
    anchors = anchors[bad[anchors + MAX_INDEL + 1] - bad[anchors] == 0]
    n = anchors.size
    kind = rng.random(n)
    is_indel = kind < indel_fraction
    is_del = is_indel & (rng.random(n) < 0.5)
    lengths = _truncated_geometric(rng, n, 0.5, MAX_INDEL)
    shifts = rng.integers(1, 4, size=n)
    ins_codes = rng.integers(0, 4, size=(n, MAX_INDEL))
    gts = _genotypes(rng, n, ploidy)

    out: list[Variant] = []
    prev_end = -1  # 0-based inclusive end of the previous kept reference allele
    for i, a in enumerate(anchors.tolist()):
        base = seq[a]
        if not is_indel[i]:
            alt = chr(_BASES[(_CODE[ord(base)] + shifts[i]) % 4])
            ref_allele = base
        elif is_del[i]:
            ref_allele, alt = seq[a : a + lengths[i] + 1], base
        else:
            ref_allele = base
            alt = base + _BASES[ins_codes[i, : lengths[i]]].tobytes().decode()
        a, ref_allele, alt = left_normalize(seq, a, ref_allele, alt)
        if a < END_MARGIN // 2 or a - prev_end <= min_spacing:
            continue  # normalisation slid it too close to an end or to its neighbour
        prev_end = a + len(ref_allele) - 1
        out.append(Variant(name, a + 1, ref_allele, alt, gts[i]))
    return out


def _build_haplotype(name: str, index: int, seq: str, variants: Sequence[Variant]) -> Haplotype:
    pieces: list[str] = []
    seg_hap: list[int] = []
    seg_ref: list[int] = []
    seg_ins: list[bool] = []
    hlen = 0
    cursor = 0

    def add(text: str, ref_start: int, inserted: bool) -> None:
        nonlocal hlen
        if not text:
            return
        pieces.append(text)
        seg_hap.append(hlen)
        seg_ref.append(ref_start)
        seg_ins.append(inserted)
        hlen += len(text)

    for v in variants:
        if not v.genotype[index]:
            continue
        a = v.pos - 1
        if seq[a : a + len(v.ref)] != v.ref:
            raise ValueError(f"variant {v} does not match the reference")
        add(seq[cursor:a], cursor, False)
        shared = min(len(v.ref), len(v.alt))
        add(v.alt[:shared], a, False)
        add(v.alt[shared:], a + len(v.ref), True)
        cursor = a + len(v.ref)
    add(seq[cursor:], cursor, False)
    if not pieces:  # empty contig
        seg_hap, seg_ref, seg_ins = [0], [0], [False]
    return Haplotype(
        name,
        index,
        "".join(pieces),
        np.asarray(seg_hap, dtype=np.int64),
        np.asarray(seg_ref, dtype=np.int64),
        np.asarray(seg_ins, dtype=bool),
    )


def apply_variants(ref: RefInput, variants: Sequence[Variant], ploidy: int = 2) -> list[Haplotype]:
    """Build every haplotype of every contig from the reference and a sorted truth list."""
    by_contig: dict[str, list[Variant]] = {}
    for v in variants:
        by_contig.setdefault(v.contig, []).append(v)
    haps: list[Haplotype] = []
    for name, seq in _as_pairs(ref):
        vs = sorted(by_contig.get(name, []), key=lambda v: v.pos)
        for h in range(ploidy):
            haps.append(_build_haplotype(name, h, seq, vs))
    return haps


def plant_variants(
    ref: RefInput,
    rate: float = 0.001,
    indel_fraction: float = 0.15,
    ploidy: int = 2,
    seed: int = 0,
    min_spacing: int = MIN_SPACING,
) -> tuple[list[Haplotype], list[Variant]]:
    """Plant SNVs and 1-10 bp indels into ``ref``.

    Returns ``(haplotypes, variants)``: ``ploidy`` haplotypes per contig (in contig order) and the
    truth list, sorted, with anchored, left-normalised indels. Variants are at least
    ``min_spacing`` bases apart (a few bases for a sample far from its reference), never within
    ``END_MARGIN // 2`` bases of a contig end and never over a non-ACGT base; with
    ``ploidy == 2`` about two thirds are heterozygous.
    """
    if ploidy < 1:
        raise ValueError("ploidy must be >= 1")
    rng = np.random.default_rng(seed)
    contigs = _as_pairs(ref)
    variants: list[Variant] = []
    for name, seq in contigs:
        variants.extend(_plant_contig(rng, name, seq, rate, indel_fraction, ploidy, min_spacing))
    return apply_variants(contigs, variants, ploidy), variants


# --------------------------------------------------------------------------------------------
# Reads


def _phred(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        q = np.rint(-10.0 * np.log10(p))
    return np.clip(np.nan_to_num(q, posinf=41.0), 2, 41).astype(np.uint8)


def simulate_pairs(
    haplotypes: Sequence[Haplotype],
    n_pairs: int,
    read_length: int = 150,
    insert_mean: float = 400,
    insert_sd: float = 40,
    error_rate: tuple[float, float] = (0.001, 0.01),
    seed: int = 0,
) -> tuple[list[FastqRecord], list[FastqRecord]]:
    """Simulate ``n_pairs`` FR read pairs from ``haplotypes``.

    Fragments are drawn in proportion to haplotype length, with normally distributed lengths
    (clipped to ``[read_length, len(haplotype)]``) and never past a haplotype end. Each pair
    is on the forward or reverse strand with equal probability. Substitution errors rise
    linearly along each read from ``error_rate[0]`` to ``error_rate[1]``, and base qualities
    (phred+33) are the phred-scaled error probability of each cycle. Returns ``(r1, r2)``, two
    lists of ``(name, sequence, quality)`` with identical names per pair.
    """
    rng = np.random.default_rng(seed)
    rl = int(read_length)
    usable = [h for h in haplotypes if len(h) >= rl]
    if n_pairs > 0 and not usable:
        raise ValueError("no haplotype is at least one read long")
    r1: list[FastqRecord] = []
    r2: list[FastqRecord] = []
    if n_pairs <= 0:
        return r1, r2
    weights = np.array([len(h) for h in usable], dtype=np.float64)
    counts = rng.multinomial(n_pairs, weights / weights.sum())

    cycle = np.arange(rl, dtype=np.float64) / max(rl - 1, 1)
    p_err = error_rate[0] + (error_rate[1] - error_rate[0]) * cycle
    qual = (_phred(p_err) + 33).tobytes().decode()
    offsets = np.arange(rl, dtype=np.int64)

    names: list[str] = []
    seqs1: list[str] = []
    seqs2: list[str] = []
    for hap, n in zip(usable, counts.tolist(), strict=True):
        if n == 0:
            continue
        hseq = np.frombuffer(hap.seq.encode(), dtype=np.uint8)
        hl = hseq.size
        frag = np.rint(rng.normal(insert_mean, insert_sd, size=n)).astype(np.int64)
        frag = np.clip(frag, rl, hl)
        start = (rng.random(n) * (hl - frag + 1)).astype(np.int64)
        rev = rng.random(n) < 0.5  # True: read 1 comes from the reverse strand
        left = start  # leftmost haplotype offset of the forward-strand read
        right = start + frag - rl  # leftmost haplotype offset of the reverse-strand read
        fwd_reads = hseq[left[:, None] + offsets]
        rev_reads = _COMP[hseq[right[:, None] + offsets]][:, ::-1]
        seq1 = np.where(rev[:, None], rev_reads, fwd_reads)
        seq2 = np.where(rev[:, None], fwd_reads, rev_reads)
        h1 = np.where(rev, right, left)
        h2 = np.where(rev, left, right)
        ref1 = hap.to_ref(h1) + 1
        ref2 = hap.to_ref(h2) + 1
        nerr = []
        for reads in (seq1, seq2):
            codes = _CODE[reads]
            err = (rng.random(reads.shape) < p_err) & (codes < 4)
            sub = (codes + rng.integers(1, 4, size=reads.shape, dtype=np.uint8)) % 4
            reads[err] = _BASES[sub[err]]
            nerr.append(err.sum(axis=1))
        s1 = rev.astype(np.int64)
        b1, b2 = seq1.tobytes(), seq2.tobytes()
        for i in range(n):
            names.append(
                f"{hap.contig}_{ref1[i]}_{ref2[i]}_{s1[i]}_{1 - s1[i]}_{hap.index}_"
                f"{h1[i] + 1}_{h2[i] + 1}_{nerr[0][i]}_{nerr[1][i]}"
            )
            seqs1.append(b1[i * rl : (i + 1) * rl].decode())
            seqs2.append(b2[i * rl : (i + 1) * rl].decode())
    # shuffle so that the output order does not reveal haplotype or position
    for pair, j in enumerate(rng.permutation(len(names)).tolist()):
        name = f"{names[j]}:{pair}"
        r1.append((name, seqs1[j], qual))
        r2.append((name, seqs2[j], qual))
    return r1, r2


def write_fastq(path: str | os.PathLike[str], reads: Iterable[FastqRecord]) -> Path:
    """Write ``(name, seq, qual)`` records as FASTQ; gzip-compressed when ``path`` ends in .gz."""
    out = Path(path)
    with contextlib.ExitStack() as stack:
        fh: BinaryIO = stack.enter_context(open(out, "wb"))
        if out.suffix == ".gz":
            fh = stack.enter_context(gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=6))
        buf: list[str] = []
        for name, seq, qual in reads:
            buf.append(f"@{name}\n{seq}\n+\n{qual}\n")
            if len(buf) >= 8192:
                fh.write("".join(buf).encode())
                buf.clear()
        fh.write("".join(buf).encode())
    return out


# --------------------------------------------------------------------------------------------
# Truth VCF


def _contig_lengths(ref: str | os.PathLike[str] | RefInput) -> tuple[list[tuple[str, int]], str]:
    if isinstance(ref, (str, os.PathLike)):
        path = os.fspath(ref)
        if os.path.exists(path + ".fai"):
            with pysam.FastaFile(path) as fa:
                return list(zip(fa.references, fa.lengths, strict=True)), path
        return [(n, len(s)) for n, s in read_fasta(path)], path
    return [(n, len(s)) for n, s in _as_pairs(ref)], ""


def write_truth_vcf(
    path: str | os.PathLike[str],
    ref_path_or_dict: str | os.PathLike[str] | RefInput,
    variants: Iterable[Variant],
    sample: str = "truth",
) -> Path:
    """Write a sorted VCF 4.2 with phased genotypes; BGZF + tabix index when ``path`` ends .gz."""
    out = Path(path)
    contigs, ref_path = _contig_lengths(ref_path_or_dict)
    header = pysam.VariantHeader()
    header.add_line("##source=gmsaccel.simulate")
    if ref_path:
        header.add_line(f"##reference=file://{os.path.abspath(ref_path)}")
    for name, length in contigs:
        header.contigs.add(name, length=length)
    header.add_line('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    header.add_sample(sample)
    order = {name: i for i, (name, _) in enumerate(contigs)}
    ordered = sorted(variants, key=lambda v: (order[v.contig], v.pos, v.ref, v.alt))
    compressed = out.name.endswith(".gz")
    with pysam.VariantFile(os.fspath(out), "wz" if compressed else "w", header=header) as vcf:
        for v in ordered:
            rec = vcf.new_record(contig=v.contig, start=v.pos - 1, alleles=(v.ref, v.alt))
            rec.samples[sample]["GT"] = v.genotype
            rec.samples[sample].phased = True
            vcf.write(rec)
    if compressed:
        pysam.tabix_index(os.fspath(out), preset="vcf", force=True)
    return out


# --------------------------------------------------------------------------------------------
# Demo


def simulate_demo(
    outdir: str | os.PathLike[str],
    genome_path: str | os.PathLike[str] | None = None,
    n_pairs: int = 10_000,
    seed: int = 0,
    rate: float = 0.001,
    read_length: int = 150,
) -> DemoFiles:
    """Write ref.fa (+ .fai), reads_1.fq.gz, reads_2.fq.gz and truth.vcf.gz into ``outdir``.

    The genome defaults to the bundled phage lambda (48,502 bp; 10,000 pairs is about 60x).
    """
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    src = Path(genome_path) if genome_path is not None else bundled_genome_path()
    contigs = read_fasta(src)
    ref = out / "ref.fa"
    _write_fasta(ref, contigs)
    (out / "ref.fa.fai").unlink(missing_ok=True)
    pysam.faidx(os.fspath(ref))
    haps, variants = plant_variants(contigs, rate=rate, seed=seed)
    reads1, reads2 = simulate_pairs(haps, n_pairs, read_length=read_length, seed=seed + 1)
    return DemoFiles(
        ref,
        write_fastq(out / "reads_1.fq.gz", reads1),
        write_fastq(out / "reads_2.fq.gz", reads2),
        write_truth_vcf(out / "truth.vcf.gz", ref, variants),
    )
