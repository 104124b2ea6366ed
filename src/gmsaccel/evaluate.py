"""Mapping accuracy of alignments of simulated reads whose names carry their true origin
(dwgsim's convention: CONTIG_POS1_POS2_..., 1-based leftmost positions of read 1 and read 2)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

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


# ---------------------------------------------------------------------------------------------
# Variant calling accuracy, the method of bench/vcfeval.sh: both sides split into biallelic,
# atomic records (MNPs into SNVs) and left-normalised against the reference with bcftools norm
# (-a -m-any -c s), matched on CHROM, POS, REF and ALT; genotypes are not compared. Query
# records failing FILTER, below min_qual or without an ALT allele in their genotypes are
# dropped. With a BED, both sides keep only records whose POS lies in its regions.

VariantKey = tuple[str, int, str, str]


def _fai_contigs(reference: str) -> list[tuple[str, int]]:
    if not os.path.exists(reference + ".fai"):
        pysam.faidx(reference)
    with open(reference + ".fai") as fh:
        return [(f[0], int(f[1])) for f in (ln.split("\t") for ln in fh) if len(f) >= 2]


def _clean_vcf(src: str, dst: str, contigs: list[tuple[str, int]]) -> None:
    """A copy without INFO (truth sets often use undeclared keys) whose ##contig lines come
    from the reference's .fai (a truth set may lack them), with undeclared FILTERs declared."""
    import gzip
    import shutil

    with open(src, "rb") as probe:
        gz = probe.read(2) == b"\x1f\x8b"
    known = {c for c, _ in contigs}
    header: list[str] = []
    filters: set[str] = set()
    declared: set[str] = {"PASS"}
    body = dst + ".body"
    chrom_line = ""
    with (gzip.open(src, "rt") if gz else open(src)) as fin, open(body, "w") as out:
        for line in fin:
            if line.startswith("##"):
                if line.startswith("##FILTER=<ID="):
                    declared.add(line[len("##FILTER=<ID="):].split(",")[0].rstrip(">\n"))
                if not line.startswith(("##INFO", "##contig")):
                    header.append(line)
                continue
            if line.startswith("#"):
                header.extend(f"##contig=<ID={c},length={n}>\n" for c, n in contigs)
                chrom_line = line
                continue
            f = line.rstrip("\n").split("\t")
            if len(f) < 8:
                continue
            if f[0] not in known:
                raise ValueError(f"{src}: contig {f[0]} is not in the reference")
            if f[6] not in (".", "PASS"):
                filters.update(f[6].split(";"))
            f[7] = "."
            out.write("\t".join(f) + "\n")
    if not chrom_line:
        os.unlink(body)
        raise ValueError(f"{src}: not a VCF file (no #CHROM line)")
    with open(dst, "w") as out:
        out.writelines(header)
        out.writelines(f'##FILTER=<ID={x},Description="{x}">\n'
                       for x in sorted(filters - declared))
        out.write(chrom_line)
        with open(body) as fin:
            shutil.copyfileobj(fin, out)
    os.unlink(body)


def _norm(reference: str, src: str, dst: str) -> None:
    import pysam.bcftools

    # pysam returns bcftools' stdout (and drops -o), so the text is written here
    base = ["-m-any", "-f", reference, "-c", "s", "-Ov", src]
    try:
        text = pysam.bcftools.norm("-a", *base)
    except pysam.SamtoolsError as e:
        if "atomize" not in str(e) and "invalid option" not in str(e):
            raise
        text = pysam.bcftools.norm(*base)  # a bcftools without -a (atomize)
    with open(dst, "w") as fh:
        fh.write(text)


def _read_bed(path: str) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    with open(path) as fh:
        for line in fh:
            f = line.split()
            if len(f) >= 3 and not line.startswith(("#", "track", "browser")):
                out.setdefault(f[0], []).append((int(f[1]), int(f[2])))
    return out


def _in_bed(bed: dict[str, list[tuple[int, int]]] | None, contig: str, pos: int) -> bool:
    return bed is None or any(s < pos <= e for s, e in bed.get(contig, ()))


def _variant_keys(path: str, query: bool, min_qual: float,
                  bed: dict[str, list[tuple[int, int]]] | None) -> dict[str, set[VariantKey]]:
    keys: dict[str, set[VariantKey]] = {"snv": set(), "indel": set()}
    with open(path) as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            f = line.rstrip("\n").split("\t")
            contig, pos, ref, alt = f[0], int(f[1]), f[3].upper(), f[4].upper()
            if query:
                if f[6] not in ("PASS", "."):
                    continue
                if f[5] == "." and min_qual > 0 or f[5] != "." and float(f[5]) < min_qual:
                    continue
                if len(f) > 9 and "GT" in f[8].split(":"):
                    gi = f[8].split(":").index("GT")
                    gts = [s.split(":")[gi] if len(s.split(":")) > gi else "." for s in f[9:]]
                    alleles = [a for g in gts for a in g.replace("|", "/").split("/")]
                    if not any(a not in (".", "0") for a in alleles):
                        continue
            if not _in_bed(bed, contig, pos) or not set(ref + alt) <= set("ACGTN"):
                continue
            kind = "snv" if len(ref) == len(alt) == 1 else "indel" if len(ref) != len(alt) \
                else None
            if kind:
                keys[kind].add((contig, pos, ref, alt))
    return keys


def variant_accuracy(reference: str | os.PathLike, truth_vcf: str | os.PathLike,
                     query_vcf: str | os.PathLike, min_qual: float = 0,
                     regions_bed: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """SNV and indel precision, recall and F1 of query_vcf against truth_vcf (genotype-
    agnostic, after normalisation; see above). Returns {"snv": {...}, "indel": {...}} with
    truth, query, tp, fp, fn, precision, recall, f1."""
    import tempfile

    reference = os.fspath(reference)
    contigs = _fai_contigs(reference)
    bed = _read_bed(os.fspath(regions_bed)) if regions_bed else None
    with tempfile.TemporaryDirectory(prefix="gmsaccel-eval-") as tmp:
        sides = []
        for name, src, is_query in (("t", truth_vcf, False), ("q", query_vcf, True)):
            clean, norm = os.path.join(tmp, f"{name}0.vcf"), os.path.join(tmp, f"{name}.vcf")
            _clean_vcf(os.fspath(src), clean, contigs)
            _norm(reference, clean, norm)
            sides.append(_variant_keys(norm, is_query, min_qual, bed))
    truth, query = sides
    out: dict[str, dict[str, Any]] = {}
    for kind in ("snv", "indel"):
        t, q = truth[kind], query[kind]
        tp = len(t & q)
        p = tp / len(q) if q else 0.0
        r = tp / len(t) if t else 0.0
        out[kind] = {"truth": len(t), "query": len(q), "tp": tp, "fp": len(q) - tp,
                     "fn": len(t) - tp, "precision": p, "recall": r,
                     "f1": 2 * p * r / (p + r) if p + r else 0.0}
    return out
