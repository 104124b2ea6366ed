"""Shared fixtures: a small random reference and simulated reads, written once per session."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam
import pytest

import gmsaccel
from gmsaccel import _core
from gmsaccel.simulate import plant_variants, simulate_pairs, write_fastq

SRC_DIR = Path(gmsaccel.__file__).resolve().parents[1]

# SIMD levels of _core.extend_batch / haplotype_costs, narrowest first; SIMD_LEVELS are the
# non-scalar ones as parameters that skip where this CPU lacks them.
LEVELS = ["scalar", "avx2", "avx512"]
RANK = {name: i for i, name in enumerate(LEVELS)}
HW_RANK = RANK[_core.max_simd_level()]
SIMD_LEVELS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(RANK[name] > HW_RANK, reason=f"CPU lacks {name}"),
    )
    for name in LEVELS[1:]
]


def cli_env() -> dict[str, str]:
    """Environment in which `python -m gmsaccel` imports the same package as the tests."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC_DIR), env.get("PYTHONPATH", "")) if p
    )
    return env


def run_cli(*args: str | os.PathLike, stdin: bytes | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
    """Runs `python -m gmsaccel ARGS`; stdout and stderr come back as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "gmsaccel", *map(os.fspath, args)],
        input=stdin, capture_output=True, env=cli_env(), timeout=timeout, check=False)


def random_genome(seed: int, lengths: dict[str, int]) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(name, "".join(rng.choices("ACGT", k=n))) for name, n in lengths.items()]


def table_contents(table: dict) -> dict[int, list[int]]:
    """hash -> its (global_pos << 1 | rev) values, read from Index.table_arrays() alone: a key's
    hash is its bucket's number above the key's own bits, a position's strand is its bit of
    rev_bits."""
    buckets = table["buckets"].astype(np.int64)
    bucket_of_key = np.repeat(np.arange(len(buckets) - 1, dtype=np.uint64), np.diff(buckets))
    hashes = (bucket_of_key << np.uint64(table["bucket_shift"])) | table["keys"].astype(np.uint64)
    j = np.arange(len(table["positions"]), dtype=np.uint64)
    rev = (table["rev_bits"][j >> np.uint64(6)] >> (j & np.uint64(63))) & np.uint64(1)
    values = (table["positions"].astype(np.uint64) << np.uint64(1)) | rev
    offs = table["offs"].tolist()
    return {h: values[offs[i] : offs[i + 1]].tolist() for i, h in enumerate(hashes.tolist())}


def expected_bucket_bits(k: int, n_keys: int) -> int:
    """About two keys per bucket (csrc/index.cpp's kKeysPerBucket), but enough buckets that a
    hash's bits below its bucket's fit the uint32 keys."""
    bits = max(0, 2 * k - 32)
    while bits < 2 * k and 2 << bits < n_keys:
        bits += 1
    return bits


def write_fasta(path: Path, contigs: list[tuple[str, str]], width: int = 60) -> Path:
    with open(path, "w") as fh:
        for name, seq in contigs:
            fh.write(f">{name}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + "\n")
    return path


@dataclass(frozen=True)
class Dataset:
    ref: Path  # FASTA with .fai, no saved index beside it
    contigs: list[tuple[str, str]]
    r1: Path  # gzip FASTQ, paired with r2
    r2: Path
    n_pairs: int


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    d = tmp_path_factory.mktemp("data")
    contigs = random_genome(11, {"chrA": 30_000, "chrB": 12_000})
    ref = write_fasta(d / "ref.fa", contigs)
    pysam.faidx(str(ref))
    haps, _ = plant_variants(contigs, rate=0.001, seed=3)
    n = 3000
    r1, r2 = simulate_pairs(haps, n, read_length=150, seed=4)
    return Dataset(ref, contigs, write_fastq(d / "r_1.fq.gz", r1),
                   write_fastq(d / "r_2.fq.gz", r2), n)


@pytest.fixture(scope="session")
def index_path(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of dataset.ref saved away from the FASTA (so that ref.fa.gxi does not exist)."""
    from gmsaccel.align import Index

    out = tmp_path_factory.mktemp("index") / "ref.gxi"
    Index.build(dataset.ref).save(out)
    return out


def write_reads_bam(bam: Path, contig_length: int,
                    reads: list[tuple[int, str, list[tuple[int, int]], str]]) -> Path:
    """A sorted, indexed BAM on one contig chr1 of reads (start, bases, cigar, name), every base
    quality 40 and MAPQ 60."""
    header = pysam.AlignmentHeader.from_dict({"HD": {"VN": "1.6", "SO": "coordinate"},
                                              "SQ": [{"SN": "chr1", "LN": contig_length}]})
    with pysam.AlignmentFile(str(bam), "wb", header=header) as out:
        for start, bases, cigar, name in sorted(reads):
            a = pysam.AlignedSegment(header)
            a.query_name, a.query_sequence, a.reference_id = name, bases, 0
            a.reference_start, a.mapping_quality, a.cigartuples = start, 60, cigar
            a.query_qualities = pysam.qualitystring_to_array("I" * len(bases))
            out.write(a)
    pysam.index(str(bam))
    return bam


def error_free_bam(d: Path, seq: str,
                   variants: list[tuple[int, str, str, int]]) -> tuple[Path, Path]:
    """ref.fa of seq, and a BAM of error-free 150-base reads at 30x per haplotype, aligned as
    the haplotypes were made: variants are (0-based position, ref, alt, haplotype 0 or 1),
    substitutions and deletions."""
    import random

    rng = random.Random(7)
    ref = write_fasta(d / "ref.fa", [("chr1", seq)])
    pysam.faidx(str(ref))
    reads = []
    for h in (0, 1):  # each haplotype as (base, reference position) pairs
        changes = {p: (r, a) for p, r, a, hh in variants if hh == h}
        hap, i = [], 0
        while i < len(seq):
            if i in changes:
                r, a = changes[i]
                hap.append((a[0], i))
                i += len(r)
            else:
                hap.append((seq[i], i))
                i += 1
        for n in range(30 * len(hap) // 150):
            at = rng.randrange(0, len(hap) - 150)
            part = hap[at:at + 150]
            cigar: list[tuple[int, int]] = []
            for k in range(150):
                gap = part[k][1] - part[k - 1][1] - 1 if k else 0
                for op, length in (((2, gap),) if gap else ()) + ((0, 1),):
                    if cigar and cigar[-1][0] == op:
                        cigar[-1] = (op, cigar[-1][1] + length)
                    else:
                        cigar.append((op, length))
            reads.append((part[0][1], "".join(b for b, _ in part), cigar, f"h{h}_{n}"))
    return ref, write_reads_bam(d / "reads.bam", len(seq), reads)
