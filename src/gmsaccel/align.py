"""Python API of the aligner, in the spirit of mappy: Index, Aligner.map, batch and file calls."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gmsaccel import _core
from gmsaccel.checkpoint import DEFAULT_CHECKPOINT_PAIRS, AlignCheckpoint, add_stats, engine_id
from gmsaccel.header import parse_read_group, read_groups_for, sam_header
from gmsaccel.scaleout import Executor

if TYPE_CHECKING:  # numpy is imported lazily: the CLI's alignment path never needs it
    import numpy as np

INDEX_SUFFIX = ".gxi"
# BGZF level of aligned output. With the zlib inside pysam's wheel, level 1 costs a third of the
# CPU of level 6 for a file about 9% larger; pass 6 (or more) for archival copies.
DEFAULT_COMPRESSION_LEVEL = 1


@dataclass(frozen=True)
class Contig:
    name: str
    length: int
    md5: str


class Index:
    """A reference index: contigs, packed sequence and minimizer table, in one mmap-able file."""

    def __init__(self, core: _core.Index, path: str | None = None):
        self._core = core
        self.path = path
        self.built_from: str | None = None  # the FASTA, when built in this process

    @classmethod
    def build(cls, fasta: str | os.PathLike, k: int = 21, w: int = 11, max_occ: int = 500,
              threads: int = 1) -> Index:
        """Indexes a FASTA (plain or gzip); threads order its minimizers (the index is the same
        for any number). Ctrl-C or SIGTERM stops it."""
        index = cls(_core.Index.build(os.fspath(fasta), k=k, w=w, max_occ=max_occ,
                                      threads=threads))
        index.built_from = os.fspath(fasta)  # (for CRAM output and sharded runs' workers)
        return index

    @classmethod
    def load(cls, path: str | os.PathLike) -> Index:
        return cls(_core.Index.load(os.fspath(path)), os.fspath(path))

    def save(self, path: str | os.PathLike) -> None:
        self._core.save(os.fspath(path))
        self.path = os.fspath(path)

    @property
    def contigs(self) -> list[Contig]:
        return [Contig(n, int(ln), m) for n, ln, m in self._core.contigs]

    @property
    def k(self) -> int:
        return int(self._core.k)

    @property
    def w(self) -> int:
        return int(self._core.w)

    @property
    def stats(self) -> dict:
        return dict(self._core.stats)

    def fetch(self, contig: int | str, start: int, end: int) -> np.ndarray:
        """Base codes (A=0 C=1 G=2 T=3 N=4; 5 beyond the contig) of contig[start:end]."""
        return self._core.fetch(contig, start, end)


def _fai_contigs(fasta: Path) -> list[tuple[str, int]] | None:
    fai = Path(str(fasta) + ".fai")
    if not fai.exists():
        return None
    out = []
    for line in fai.read_text().splitlines():
        f = line.split("\t")
        if len(f) >= 2:
            out.append((f[0], int(f[1])))
    return out


_CODE_LETTERS = "ACGTN"


def _sequence_mismatch(index: Index, fasta: Path, samples: int = 16, width: int = 64) -> str | None:
    """Compares windows spread along every contig of an faidx-indexed FASTA with the index: a
    cheap check that catches an index built from another sequence with the same names and
    lengths. Returns a description of the first difference, or None."""
    import pysam

    with pysam.FastaFile(str(fasta)) as fa:
        for i, c in enumerate(index.contigs):
            step = max(1, c.length // samples)
            for start in range(0, c.length, step):
                end = min(c.length, start + width)
                ref = fa.fetch(c.name, start, end).upper()
                ours = "".join(_CODE_LETTERS[x] for x in index.fetch(i, start, end))
                ref_n = "".join(b if b in "ACGT" else "N" for b in ref)
                if ref_n != ours:
                    return f"contig {c.name} differs at {start + 1}-{end}"
    return None


def open_index(reference: str | os.PathLike, threads: int = 1) -> Index:
    """Loads REF.gxi, or REF.fa's saved index (REF.fa.gxi) when present, else indexes REF.fa
    (on threads). A saved index is checked against the FASTA (contig names, lengths and sampled
    sequence)."""
    ref = Path(reference)
    if ref.suffix == INDEX_SUFFIX:
        return Index.load(ref)
    if not ref.exists():
        raise _core.InputError(f"{ref}: no such file")
    if not ref.is_file():
        raise _core.InputError(f"{ref}: not a FASTA file (is a directory?)")
    saved = Path(str(ref) + INDEX_SUFFIX)
    if saved.exists():
        index = Index.load(saved)
        fai = _fai_contigs(ref)
        if fai is None:
            try:  # samtools-style: index the FASTA beside itself so that it can be checked
                import pysam

                pysam.faidx(str(ref))
                fai = _fai_contigs(ref)
            except (OSError, pysam.SamtoolsError):
                fai = None  # plain-gzip or read-only FASTA: names/lengths cannot be checked
        problem = None
        if fai is not None and fai != [(c.name, c.length) for c in index.contigs]:
            problem = "contig names or lengths differ from its .fai"
        elif fai is not None:
            problem = _sequence_mismatch(index, ref)
        if problem:
            raise _core.InputError(
                f"{saved}: index was built from a different reference than {ref} ({problem}); "
                f"rebuild it with 'gmsaccel index {ref}'"
            )
        return index
    index = Index.build(ref, threads=threads)
    index.built_from = str(ref)
    return index


def in_memory_note(index: Index) -> str | None:
    """A hint for indexes built on the fly from a FASTA, printed once a command succeeds."""
    ref = index.built_from
    return f"indexed {ref} in memory (save time next run: gmsaccel index {ref})" if ref else None


@dataclass(frozen=True)
class Hit:
    """One alignment. Coordinates are 0-based half-open; q_st/q_en are on the read as given."""

    ctg: str
    ctg_len: int
    r_st: int
    r_en: int
    q_st: int
    q_en: int
    strand: int  # +1 forward, -1 reverse complement
    mapq: int
    cigar: str
    NM: int  # noqa: N815 - the SAM tag's name
    MD: str  # noqa: N815
    score: int
    sub_score: int
    is_primary: bool


def _to_hits(index: Index, raw: Sequence, read_len: int) -> list[Hit]:
    contigs = index.contigs
    hits = []
    for i, h in enumerate(raw):
        q_st, q_en = (read_len - h.q_end, read_len - h.q_begin) if h.rev else (h.q_begin, h.q_end)
        c = contigs[h.contig]
        hits.append(Hit(c.name, c.length, h.pos, h.end, q_st, q_en, -1 if h.rev else 1, h.mapq,
                        h.cigar, h.nm, h.md, h.score, h.sub_score, i == 0))
    return hits


def cuda_module():
    """The optional CUDA kernels module, or None when this build has none."""
    try:
        from gmsaccel import _cuda
    except ImportError:
        return None
    return _cuda


def resolve_device(device: str) -> tuple[str, int, bool]:
    """Maps --device (auto, cpu, gpu, gpu:N) to (kind, GPU index or -1, emulate). 'auto' takes
    GPU 0 when the build has CUDA kernels and a device is visible. GMSACCEL_GPU_EMULATE=1 runs
    the GPU code path with host-executed threads (for testing without a GPU). Registers the GPU
    seeding and extension backends with _core when the answer is a GPU."""
    kind, index, emulate = select_device(device)
    if kind == "gpu":
        cuda = cuda_module()
        _core.set_extend_backend(cuda.extend_backend())
        _core.set_seed_backend(cuda.seed_backend())
    return kind, index, emulate


def select_device(device: str) -> tuple[str, int, bool]:
    """resolve_device without registering a backend (shared with the caller's device logic)."""
    if device == "cpu":
        return "cpu", -1, False
    if device != "auto" and device != "gpu" and not device.startswith("gpu:"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu, gpu or gpu:N")
    emulate = os.environ.get("GMSACCEL_GPU_EMULATE") == "1"
    cuda = cuda_module()
    count = cuda.device_count() if cuda is not None else 0
    if device == "auto":
        if cuda is None or (count == 0 and not emulate):
            return "cpu", -1, False
        index = 0
    else:
        if cuda is None:
            raise RuntimeError(f"--device {device}: this build of gmsaccel has no CUDA kernels "
                               "(build it where a CUDA toolkit is installed); use --device cpu")
        if count == 0 and not emulate:
            raise RuntimeError(f"--device {device}: no CUDA device is visible "
                               f"({cuda.device_problem()}); use --device cpu")
        try:
            index = int(device.split(":", 1)[1]) if ":" in device else 0
        except ValueError:
            raise ValueError(f"unknown device {device!r}: use gpu:N with a number") from None
        if not emulate and not 0 <= index < count:
            raise RuntimeError(f"--device {device}: only {count} CUDA device(s) visible")
    return "gpu", index, emulate


def _as_strings(reads: Sequence[str] | Sequence[bytes] | np.ndarray) -> list[str]:
    import numpy as np

    if isinstance(reads, np.ndarray):
        if reads.dtype == np.uint8 and reads.ndim == 2:
            return [row.tobytes().decode("ascii").rstrip("\0") for row in reads]
        return [r.decode("ascii") if isinstance(r, bytes) else str(r) for r in reads.tolist()]
    return [r.decode("ascii") if isinstance(r, bytes) else r for r in reads]


class Aligner:
    """Maps reads to an index. `simd` forces a SIMD level (scalar, avx2, avx512);
    insert_model_pairs: the leading pairs of a paired input the insert-size model is estimated
    from."""

    def __init__(self, index: Index | str | os.PathLike, threads: int = 1, device: str = "auto",
                 simd: str | None = None, min_score: int = 30, insert_model_pairs: int = 10000):
        self.index = index if isinstance(index, Index) else open_index(index)
        self.threads = max(1, int(threads))
        # as asked, for workers of a sharded run to resolve on their own machines
        self.requested_device, self.requested_simd, self.min_score = device, simd, min_score
        self.device, gpu_index, emulate = resolve_device(device)
        self._core = _core.Aligner(self.index._core, simd=simd or "", min_score=min_score,
                                   device=gpu_index, device_emulate=emulate,
                                   insert_model_pairs=insert_model_pairs)

    @property
    def simd(self) -> str:
        return self._core.simd

    def map(self, seq: str, qual: str | None = None) -> list[Hit]:
        """All alignments of one read, primary first (qualities do not change placement)."""
        del qual
        return _to_hits(self.index, self._core.map(seq), len(seq))

    def map_batch(self, reads: Sequence[str] | Sequence[bytes] | np.ndarray) -> list[list[Hit]]:
        """Alignments of many reads in one call through the batched extension kernel. reads may
        be strings, bytes, a numpy array of them, or a 2-D uint8 array of ASCII codes."""
        seqs = _as_strings(reads)
        raw = self._core.map_batch(seqs)
        return [_to_hits(self.index, r, len(s)) for r, s in zip(raw, seqs, strict=True)]

    def cram_reference(self, fasta: str | os.PathLike | None = None) -> str:
        """The FASTA CRAM output is encoded against (see align_fastq)."""
        candidates = [fasta] if fasta is not None else [self.index.built_from]
        if fasta is None and self.index.path and self.index.path.endswith(INDEX_SUFFIX):
            candidates.append(self.index.path[: -len(INDEX_SUFFIX)])
        found = next((Path(c) for c in candidates if c and Path(c).is_file()), None)
        if found is None:
            where = f"{fasta}: no such file" if fasta is not None else \
                f"no FASTA found for the index {self.index.path}"
            raise _core.InputError(f"CRAM output needs the reference FASTA ({where})")
        # Checked now, not when the sorted records are finally encoded hours later: htslib
        # reads the FASTA through its .fai (made here when missing) and would otherwise fail
        # then, or embed the sequences of contigs the FASTA lacks.
        if _fai_contigs(found) is None:
            import pysam

            try:
                pysam.faidx(os.fspath(found))
            except (OSError, pysam.SamtoolsError) as e:
                raise _core.InputError(
                    f"{found}: cannot index it for CRAM output (a gzip FASTA must be bgzip'ed, "
                    f"and its folder writable for the .fai): {str(e).strip()[:200]}") from None
        problem = None
        if _fai_contigs(found) != [(c.name, c.length) for c in self.index.contigs]:
            problem = "contig names or lengths differ"
        else:
            problem = _sequence_mismatch(self.index, found)
        if problem:
            raise _core.InputError(f"{found}: not the reference of the index ({problem}); CRAM "
                                   "output is encoded against the reads' own reference")
        return os.fspath(found)

    def align_fastq(
        self,
        r1: str | os.PathLike | Sequence[str | os.PathLike],
        r2: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        out: str | os.PathLike = "-",
        *,
        read_group: str | Sequence[str] | None = None,
        sort: bool = True,
        output_format: str | None = None,
        batch_reads: int = 10000,
        memory_bytes: int = 64 << 20,
        compression_level: int = DEFAULT_COMPRESSION_LEVEL,
        mark_duplicates: bool = False,
        copy_comment: bool = False,
        command_line: Sequence[str] | None = None,
        progress: Callable[[int], None] | None = None,
        executor: Executor | None = None,
        shard_pairs: int | None = None,
        shard_threads: int = 1,
        tmp_dir: str | os.PathLike | None = None,
        fasta: str | os.PathLike | None = None,
        interleaved: bool = False,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_pairs: int | None = None,
        log: Callable[[str], None] | None = None,
        spill_compression: str = "never",
        on_complete: Callable[[dict], None] | None = None,
    ) -> dict:
        """Streams FASTQ (single or paired, plain or gzip) to a sorted, indexed BAM (or CRAM with
        an .crai index, or SAM: output_format, or from out's suffix; '-' writes BAM to stdout).
        r1 (and r2) may be lists of files, read one after the other: a sample's lanes, r1[i]
        and r2[i] one lane's mates. The records are those of one file of them all (when the
        first holds the insert-size model's leading pairs, 10,000 by default). read_group: a
        bwa-style @RG line for every record, or a list of one per lane (distinct IDs; with
        mark_duplicates, one library).
        CRAM needs the reference FASTA: fasta, else the one the index was built from or the
        index's path without its .gxi. interleaved: r1 holds the pairs, each pair's two reads
        one after the other (as `samtools fastq` writes them; bwa mem -p); r2 must be None.
        Returns run statistics.

        mark_duplicates flags PCR and optical duplicates (FLAG 0x400: same unclipped 5' ends and
        strands, the best sum of base qualities >= 15 kept) as the sorted output is written,
        adds each pair's ms tag (the mate's score), and reports what it found under
        "duplicates". It needs sorted output.

        copy_comment copies each read's FASTQ comment onto its records as SAM tags, as bwa mem
        -C does (e.g. a UMI as RX:Z:ACGT-TGCA): the comment must be tab-separated TAG:TYPE:VALUE
        fields, none of them a tag the aligner writes (RG comes from read_group); anything else
        is an InputError naming the file, record and field.

        With executor= (a dask.distributed Client, or any concurrent.futures executor) the
        reads are aligned there in shards of shard_pairs pairs (shard_threads threads each)
        and the sorted parts merged here into the same BAM a local run writes; workers open
        the index by its path and write parts under tmp_dir (default: beside out), so on a
        cluster both must be on shared storage (see align_shards.py). It needs sorted output.

        checkpoint: a folder where, every checkpoint_pairs pairs (default 4,000,000), the sorted
        records so far are made durable (see checkpoint.py). When it holds a checkpoint of the
        same reads, index, options and version, the run goes on from there: the records are
        those of one uninterrupted run ("resumed_pairs" in the statistics says how many pairs
        came from the checkpoint). The folder is removed once the output is complete, and kept
        when the run fails. It needs sorted output to a file, and reads in files (not pipes).
        log: where messages about the checkpoint go (e.g. why one could not be used).
        on_complete(stats): called once the output is in place, before the checkpoint is
        removed (a caller recording the finished output there, as `run` does, then never
        loses both to a signal in between).

        spill_compression: "always" compresses the sort's spill files in blocks (builds with
        ISA-L): about 40% of the scratch space for about 3.5 thread-seconds per GB of records;
        "never" (the default). Records are the same."""
        if interleaved and r2 is not None:
            raise ValueError("interleaved reads come in one file: give no r2")
        r1s, r2s = fastq_lanes(r1, r2)
        out = os.fspath(out)
        fmt = output_format or ("sam" if out.endswith(".sam") else
                                "cram" if out.endswith(".cram") else "bam")
        cram_reference = self.cram_reference(fasta) if fmt == "cram" else ""
        groups = [read_group] if isinstance(read_group, str) else list(read_group or [])
        rg_lines, rg_ids = read_groups_for(groups, len(r1s), mark_duplicates) if groups else \
            ([], [])
        header = sam_header([(c.name, c.length, c.md5) for c in self.index.contigs],
                            sorted_output=sort, read_group_line=rg_lines,
                            command_line=command_line)
        if executor is not None and not sort:
            raise ValueError("sharded alignment writes sorted output only")
        # (lanes that are pipes can be read once only: their model is the first lane's)
        paired = bool(r2s) or interleaved
        model = self._model_across_lanes(r1s, r2s, interleaved, header, tmp_dir) \
            if paired and len(r1s) > 1 and all(map(os.path.isfile, [*r1s, *r2s])) else None
        if checkpoint is not None:
            if not sort or out == "-":
                raise ValueError("checkpoints need sorted output to a file")
            for f in [*r1s, *r2s]:
                if not os.path.isfile(f):
                    raise ValueError(f"{f}: checkpoints need reads in files (a pipe cannot be "
                                     "read again)")
            if executor is not None:
                return self._align_sharded_with_checkpoint(
                    r1s, r2s, out, header, Path(checkpoint), log, model, rg_ids,
                    executor=executor, shard_pairs=shard_pairs, shard_threads=shard_threads,
                    batch_reads=batch_reads, memory_bytes=memory_bytes,
                    compression_level=compression_level, fmt=fmt,
                    mark_duplicates=mark_duplicates, copy_comment=copy_comment,
                    tmp_dir=tmp_dir, progress=progress, cram_reference=cram_reference,
                    interleaved=interleaved, on_complete=on_complete)
            return self._align_with_checkpoint(
                r1s, r2s, out, header, Path(checkpoint), log, model, rg_ids, paired,
                checkpoint_pairs=checkpoint_pairs or DEFAULT_CHECKPOINT_PAIRS,
                batch_reads=batch_reads, fmt=fmt, memory_bytes=memory_bytes,
                compression_level=compression_level, mark_duplicates=mark_duplicates,
                progress=progress, copy_comment=copy_comment, cram_reference=cram_reference,
                interleaved=interleaved, spill_compression=spill_compression,
                on_complete=on_complete)
        if executor is not None:
            from gmsaccel.align_shards import DEFAULT_SHARD_PAIRS, align_fastq_sharded

            return align_fastq_sharded(
                self, r1s, r2s or None, out, header,
                executor=executor, shard_pairs=shard_pairs or DEFAULT_SHARD_PAIRS,
                shard_threads=shard_threads, read_groups=rg_ids, batch_reads=batch_reads,
                memory_bytes=memory_bytes, compression_level=compression_level,
                output_format=fmt, threads=self.threads, mark_duplicates=mark_duplicates,
                copy_comments=copy_comment, tmp_dir=os.fspath(tmp_dir) if tmp_dir else None,
                progress=progress, cram_reference=cram_reference, interleaved=interleaved,
                insert_model=model)
        return self._core.align_fastq(
            r1s, r2s, out, header, threads=self.threads,
            batch_reads=batch_reads, read_groups=rg_ids, sort=sort, format=fmt,
            memory_bytes=memory_bytes, write_index=out != "-" and fmt in ("bam", "cram"),
            compression_level=compression_level, mark_duplicates=mark_duplicates,
            progress=progress, tmp_dir=os.fspath(tmp_dir) if tmp_dir else "",
            copy_comments=copy_comment, cram_reference=cram_reference, interleaved=interleaved,
            insert_model=model, spill_compression=spill_compression)

    def _checkpoint_identity(self, r1s: list[str], r2s: list[str], rg_ids: list[str],
                             mark_duplicates: bool, copy_comment: bool,
                             interleaved: bool) -> dict:
        """What shapes the records a checkpoint holds: a later run goes on from it only when
        all of this is the same (threads, batch size, SIMD level and device are not: they
        do not change records)."""
        from gmsaccel import __version__
        from gmsaccel.resume import file_identity

        idx = self.index
        if not idx.path and not idx.built_from:
            raise ValueError("checkpoints need an index saved to a file or built from a FASTA "
                             "file: a later run must find the same one")
        table = {k: v for k, v in idx.stats.items() if k not in ("build_seconds", "file_bytes")}
        return {"version": __version__,
                # the engine itself: a rebuilt extension is another engine, whatever its version
                "engine": engine_id(),
                "index": file_identity(idx.path) if idx.path else
                {"fasta": file_identity(idx.built_from), "k": idx.k, "w": idx.w,
                 "max_occ": int(idx._core.max_occ), **table},
                "contigs": [[c.name, c.length, c.md5] for c in idx.contigs],
                "reads1": [file_identity(f) for f in r1s],
                "reads2": [file_identity(f) for f in r2s] if r2s else None,
                "options": {"read_groups": rg_ids, "mate_scores": mark_duplicates,
                            "copy_comment": copy_comment, "interleaved": interleaved,
                            "min_score": self.min_score,
                            "insert_model_pairs": self._core.insert_model_pairs}}

    def _align_with_checkpoint(self, r1s: list[str], r2s: list[str], out: str, header: str,
                               folder: Path, log: Callable[[str], None] | None,
                               model: dict | None, rg_ids: list[str], paired: bool, *,
                               checkpoint_pairs: int, batch_reads: int, fmt: str,
                               memory_bytes: int, compression_level: int,
                               mark_duplicates: bool, progress: Callable[[int], None] | None,
                               copy_comment: bool, cram_reference: str,
                               interleaved: bool, spill_compression: str,
                               on_complete: Callable[[dict], None] | None) -> dict:
        """align_fastq with checkpoints in folder (the spills go there too)."""
        identity = self._checkpoint_identity(r1s, r2s, rg_ids, mark_duplicates, copy_comment,
                                             interleaved)
        with AlignCheckpoint(folder, identity, log, output=os.path.abspath(out)) as ck:
            state = ck.resume()
            base_reads = state["stats"].get("reads", 0) if state else 0
            report = progress
            if progress is not None and base_reads:
                def report(n: int) -> None:
                    progress(base_reads + n)
            stats = self._core.align_fastq(
                r1s, r2s, out, header, threads=self.threads, batch_reads=batch_reads,
                read_groups=rg_ids, sort=True, format=fmt, memory_bytes=memory_bytes,
                write_index=fmt in ("bam", "cram"), compression_level=compression_level,
                mark_duplicates=mark_duplicates, progress=report, tmp_dir=str(folder),
                copy_comments=copy_comment, cram_reference=cram_reference,
                interleaved=interleaved,
                insert_model=state["insert_model"] if state else model,
                checkpoint_pairs=checkpoint_pairs,
                on_checkpoint=lambda cp: ck.record(cp, paired),
                skip_pairs=state["pairs"] if state else 0,
                resume_spills=state["spills"] if state else [],
                resume_duplicate_reach=state["duplicate_reach"] if state else 0,
                spill_compression=spill_compression)
            if state:
                total = copy.deepcopy(state["stats"])
                add_stats(total, stats)
                for key in ("insert_model", "duplicates", "duplicate_reach", "seconds",
                            "close_seconds", "spilled_bytes", "spill_peak_bytes",
                            "checkpoint_seconds"):
                    if key in stats:
                        total[key] = stats[key]
                stats = total
            stats["resumed_pairs"] = state["pairs"] if state else 0
            stats["resumed_reads"] = base_reads
            if on_complete is not None:
                on_complete(stats)
            ck.finish()
        return stats

    def _align_sharded_with_checkpoint(self, r1s: list[str], r2s: list[str], out: str,
                                       header: str, folder: Path,
                                       log: Callable[[str], None] | None, model: dict | None,
                                       rg_ids: list[str], *, executor: Executor,
                                       shard_pairs: int | None, shard_threads: int,
                                       batch_reads: int, memory_bytes: int,
                                       compression_level: int, fmt: str,
                                       mark_duplicates: bool, copy_comment: bool,
                                       tmp_dir: str | os.PathLike | None,
                                       progress: Callable[[int], None] | None,
                                       cram_reference: str, interleaved: bool,
                                       on_complete: Callable[[dict], None] | None) -> dict:
        """Sharded alignment whose finished parts are kept in folder (which the workers must
        see) and reused by a later run of the same input, shards and options."""
        # (engine_id as the shards' workers call it)
        from gmsaccel.align_shards import DEFAULT_SHARD_PAIRS, align_fastq_sharded
        from gmsaccel.align_shards import engine_id as workers_engine_id

        shard_pairs = shard_pairs or DEFAULT_SHARD_PAIRS
        identity = self._checkpoint_identity(r1s, r2s, rg_ids, mark_duplicates, copy_comment,
                                             interleaved)
        # The workers' build (asked of one of them): parts of another are not reused.
        identity["worker_engine"] = executor.submit(workers_engine_id).result()
        # (the shards' bounds: their size, and whether the leading one holds the model's pairs)
        identity["sharded"] = {"shard_pairs": shard_pairs, "model_given": model is not None}
        with AlignCheckpoint(folder, identity, log, output=os.path.abspath(out)) as ck:
            stats = align_fastq_sharded(
                self, r1s, r2s or None, out, header, executor=executor,
                shard_pairs=shard_pairs, shard_threads=shard_threads, read_groups=rg_ids,
                batch_reads=batch_reads, memory_bytes=memory_bytes,
                compression_level=compression_level, output_format=fmt,
                threads=self.threads, mark_duplicates=mark_duplicates,
                copy_comments=copy_comment, tmp_dir=os.fspath(tmp_dir) if tmp_dir else None,
                progress=progress, cram_reference=cram_reference, interleaved=interleaved,
                insert_model=model, checkpoint=ck)
            if on_complete is not None:
                on_complete(stats)
            ck.finish()
        return stats

    def _model_across_lanes(self, r1s: list[str], r2s: list[str], interleaved: bool,
                            header: str, scratch: str | os.PathLike | None) -> dict | None:
        """The insert-size model of the input's leading pairs (insert_model_pairs) when the
        first lane holds fewer: estimated from those pairs, read across the lanes (regular
        files, read again by the run), as from one file of them all. None when the first lane
        holds them: the run estimates the same model from its first batch."""
        want = self._core.insert_model_pairs
        texts: list[tuple[bytes, bytes]] = []
        for i, r1 in enumerate(r1s):
            with _core.FastqReader(r1) as f1:
                f2 = _core.FastqReader(r2s[i]) if r2s else None
                try:
                    t1, t2, n, _ = _core.read_fastq_shard(f1, f2, want, interleaved)
                finally:
                    if f2 is not None:
                        f2.close()
            if i == 0 and n == want:
                return None
            texts.append((t1, t2))
            want -= n
            if want == 0:
                break
        if len({t[:1] for t, _ in texts if t}) > 1:
            return None  # FASTQ and FASTA lanes, which one file cannot hold: the first lane's
        with tempfile.TemporaryDirectory(prefix="gmsaccel-leading-", dir=scratch) as d:
            lead1, lead2 = os.path.join(d, "r1.fq"), os.path.join(d, "r2.fq")
            Path(lead1).write_bytes(b"".join(t for t, _ in texts))
            Path(lead2).write_bytes(b"".join(t for _, t in texts))
            stats = self._core.align_fastq([lead1], [lead2], os.path.join(d, "lead.bam"), header,
                                           threads=self.threads, sort=False, write_index=False,
                                           compression_level=0)
        return stats["insert_model"]


def fastq_files(files: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """One file or a sequence of them, as a list of paths (at least one)."""
    paths = [os.fspath(files)] if isinstance(files, (str, os.PathLike)) else \
        [os.fspath(f) for f in files]
    if not paths:
        raise ValueError("no reads file given")
    if "-" in paths and len(paths) > 1:
        raise ValueError("standard input ('-') is the only reads file when it is one")
    for path in paths:  # every lane's file before the first is aligned, not hours later
        if path == "-":
            continue
        reason = "No such file or directory" if not os.path.exists(path) else \
            "Is a directory" if os.path.isdir(path) else \
            "Permission denied" if not os.access(path, os.R_OK) else None
        if reason:
            raise _core.InputError(f"{path}: cannot open ({reason})")
    return paths


def fastq_lanes(r1: str | os.PathLike | Sequence[str | os.PathLike],
                r2: str | os.PathLike | Sequence[str | os.PathLike] | None
                ) -> tuple[list[str], list[str]]:
    """The first mates' files and the second mates' (none for single reads), checked
    (fastq_files) and paired lane by lane."""
    r1s = fastq_files(r1)
    r2s = fastq_files(r2) if r2 is not None else []
    if r2s and len(r2s) != len(r1s):
        raise ValueError(f"{len(r1s)} files of first mates but {len(r2s)} of second mates: "
                         "each lane needs both")
    return r1s, r2s


def align_fastq(reference: Index | str | os.PathLike,
                r1: str | os.PathLike | Sequence[str | os.PathLike],
                r2: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                out: str | os.PathLike = "-", *,
                threads: int = 1, device: str = "auto", **kwargs) -> dict:
    """One call from FASTQ to a sorted, indexed BAM."""
    return Aligner(reference, threads=threads, device=device).align_fastq(r1, r2, out, **kwargs)


def _sam_quals(qual: str | None, n: int) -> str:
    return qual if qual is not None else "*" if n == 0 else "I" * n


def sam_line(name: str, seq: str, hit: Hit | None, qual: str | None = None,
             read_group: str | None = None) -> str:
    """A single-end SAM record (text) for a read and one of its hits (None: unmapped)."""
    rg = f"\tRG:Z:{read_group}" if read_group else ""
    if hit is None:
        return f"{name}\t4\t*\t0\t0\t*\t*\t0\t0\t{seq or '*'}\t{_sam_quals(qual, len(seq))}{rg}"
    flag = (16 if hit.strand < 0 else 0) | (0 if hit.is_primary else 256)
    if hit.strand < 0:
        seq = seq.translate(str.maketrans("ACGTacgt", "TGCAtgca"))[::-1]
        qual = qual[::-1] if qual is not None else None
    tags = f"NM:i:{hit.NM}\tMD:Z:{hit.MD}\tAS:i:{hit.score}"
    if hit.sub_score:
        tags += f"\tXS:i:{hit.sub_score}"
    return (f"{name}\t{flag}\t{hit.ctg}\t{hit.r_st + 1}\t{hit.mapq}\t{hit.cigar}\t*\t0\t0\t"
            f"{seq}\t{_sam_quals(qual, len(seq))}\t{tags}{rg}")


def bam_writer(path: str | os.PathLike, index: Index, *, read_group: str | None = None,
               sort: bool = True, threads: int = 1, memory_bytes: int = 64 << 20,
               command_line: Sequence[str] | None = None) -> _core.BamWriter:
    """A BAM writer for alignments to index that sorts, indexes and renames into place on close
    (use it as a context manager: an exception abandons the output). Add records with
    add_sam_line(sam_line(...))."""
    rg_line = parse_read_group(read_group)[0] if read_group else None
    header = sam_header([(c.name, c.length, c.md5) for c in index.contigs], sorted_output=sort,
                        read_group_line=rg_line, command_line=command_line)
    return _core.BamWriter(os.fspath(path), header, sort=sort, threads=threads,
                           memory_bytes=memory_bytes)
