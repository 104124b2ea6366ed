"""The gmsaccel command line: index, align, call, run, demo, doctor."""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gmsaccel import __version__, _core
from gmsaccel.align_shards import DEFAULT_SHARD_PAIRS
from gmsaccel.checkpoint import DEFAULT_CHECKPOINT_PAIRS, drop_checkpoint, kept_checkpoint
from gmsaccel.outputs import write_text_atomically

if TYPE_CHECKING:
    from gmsaccel.call import Caller
    from gmsaccel.tumour_in_normal import TumourInNormalEstimate

EPILOG = "Run 'gmsaccel COMMAND --help' for a command's options."


class Terminated(KeyboardInterrupt):
    """SIGTERM: what Slurm, Kubernetes and workflow managers send to cancel a job or end it at
    its time limit. Raised where SIGINT's KeyboardInterrupt would be, so that the same clean-up
    runs (temporary files and spills removed, no partial output) before the SIGKILL that
    follows."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


PROGRESS_SECONDS_ENV = "GMSACCEL_PROGRESS_SECONDS"


def _progress_seconds() -> float:
    text = os.environ.get(PROGRESS_SECONDS_ENV, "60")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # (also NaN)
        raise ValueError(f"{PROGRESS_SECONDS_ENV}={text!r}: not a number of seconds (0: no "
                         "progress lines in logs)")
    return value


def _elapsed(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


class Progress:
    """Reads done, on stderr. On a terminal: one self-rewriting line. In a log file (a batch
    job's stderr): a line every GMSACCEL_PROGRESS_SECONDS seconds (default 60; 0 for none), so
    that the log of a run of hours shows that it moves, and how fast. Nothing with -q."""

    stage = "align"

    def __init__(self, quiet: bool):
        self.on = not quiet and sys.stderr.isatty()
        self.every = 0.0 if quiet or self.on else _progress_seconds()
        self.t0 = time.monotonic()
        self.next_line = self.t0 + self.every

    def __call__(self, reads: int) -> None:
        if self.on or self.every:
            rate = reads / max(time.monotonic() - self.t0, 1e-9)
            self._show(f"{reads:,} reads", f"{rate:,.0f} reads/s")

    def _show(self, *parts: str) -> None:
        if self.on:
            print("\r" + "  ".join(parts), end="", file=sys.stderr, flush=True)
            return
        now = time.monotonic()
        if now >= self.next_line:
            print(f"[gmsaccel] {self.stage}: {', '.join(parts)}; "
                  f"{_elapsed(now - self.t0)} elapsed", file=sys.stderr, flush=True)
            self.next_line = now + self.every

    def done(self) -> None:
        if self.on:
            print(file=sys.stderr)


class CallProgress(Progress):
    """Reference bases called, on stderr (as Progress)."""

    stage = "call"

    def __call__(self, done: int, total: int) -> None:  # type: ignore[override]
        if self.on or self.every:
            rate = done / max(time.monotonic() - self.t0, 1e-9) / 1e6
            pct = 100 * done / total if total else 100.0
            self._show(f"{done / 1e6:,.1f} of {total / 1e6:,.1f} Mbp called ({pct:.0f}%)",
                       f"{rate:,.2f} Mbp/s")


def _fraction_or_auto(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or auto, not {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return value


def _log(args: argparse.Namespace, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"[gmsaccel] {msg}", file=sys.stderr)


def cmd_index(args: argparse.Namespace) -> int:
    from gmsaccel.align import INDEX_SUFFIX, Index

    out = args.output or (str(args.reference) + INDEX_SUFFIX)
    t0 = time.monotonic()
    index = Index.build(args.reference, k=args.k, w=args.w, max_occ=args.max_occ,
                        threads=args.threads)
    index.save(out)
    st = index.stats
    size = Path(out).stat().st_size
    _log(args, f"indexed {len(index.contigs)} contigs, {sum(c.length for c in index.contigs):,} "
               f"bp, {st.get('n_minimizers', 0):,} minimizers in {time.monotonic() - t0:.2f} s; "
               f"wrote {out} ({size / 1e6:.1f} MB)")
    return 0


def _check_output_dir(path: str | None) -> None:
    """An output path whose directory is missing, or that is a directory, fails before the work
    (None and '-' are no file)."""
    if path is None or path == "-":
        return
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise _core.InputError(f"{path}: directory {parent} does not exist")
    if Path(path).is_dir():
        raise _core.InputError(f"{path}: is a directory")


def _reads_files(text: str | None) -> list[str] | None:
    """A reads argument: one file, or a sample's lanes as a comma-separated list (as bowtie2
    and HISAT2 take them; a file whose own name holds a comma is taken whole)."""
    if text is None:
        return None
    if "," not in text or Path(text).exists():
        return [text]
    files = text.split(",")
    if not all(files):
        raise ValueError(f"{text}: an empty file name in the comma-separated list")
    return files


def _run_read_groups(name: str, lanes: int) -> list[str]:
    """run's read groups: the sample's name, or NAME.1, NAME.2, ... for its lanes."""
    if lanes == 1:
        return [f"@RG\\tID:{name}\\tSM:{name}"]
    return [f"@RG\\tID:{name}.{i}\\tSM:{name}" for i in range(1, lanes + 1)]


def cmd_align(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from gmsaccel.align import INDEX_SUFFIX, Aligner, in_memory_note, open_index

    reads1, reads2 = _reads_files(args.reads1), _reads_files(args.reads2)

    if args.mark_duplicates and args.unsorted:
        raise ValueError("--mark-duplicates needs sorted output: drop --unsorted")
    if args.dask_scheduler and args.unsorted:
        raise ValueError("--dask-scheduler writes sorted output: drop --unsorted")
    if args.dask_scheduler and "-" in reads1:
        raise ValueError("--dask-scheduler reads FASTQ files, not standard input")
    if args.interleaved and args.reads2:
        raise ValueError("--interleaved reads come in one file: give no reads2")
    if args.checkpoint and (args.unsorted or args.output == "-"):
        raise ValueError("--checkpoint needs sorted output to a file (-o)")
    t0 = time.monotonic()
    index = open_index(args.reference, threads=args.threads)
    aligner = Aligner(index, threads=args.threads, device=args.device, simd=args.simd)
    # Check where the results go before the work, not after it.
    for path in (args.output, args.metrics):
        _check_output_dir(path)
    if args.tmp_dir and not Path(args.tmp_dir).is_dir():
        raise _core.InputError(f"--tmp-dir {args.tmp_dir}: not a directory")
    client = _dask_client(args.dask_scheduler) if args.dask_scheduler else None
    progress = Progress(args.quiet)
    try:
        stats = aligner.align_fastq(
            reads1, reads2, args.output, read_group=args.read_group,
            sort=not args.unsorted, output_format=args.output_fmt, batch_reads=args.batch_size,
            memory_bytes=args.sort_memory << 20, compression_level=args.compression_level,
            mark_duplicates=args.mark_duplicates, copy_comment=args.copy_comment,
            command_line=["gmsaccel", *argv], progress=progress, executor=client,
            shard_pairs=args.shard_pairs, tmp_dir=args.tmp_dir, interleaved=args.interleaved,
            fasta=None if args.reference.endswith(INDEX_SUFFIX) else args.reference,
            checkpoint=args.checkpoint, checkpoint_pairs=args.checkpoint_pairs,
            log=lambda msg: _log(args, msg), spill_compression=args.spill_compression)
    except BaseException:
        if args.checkpoint and (pairs := kept_checkpoint(args.checkpoint)) is not None:
            print(f"[gmsaccel] kept the checkpoint in {args.checkpoint} ({pairs:,} pairs "
                  "aligned): the same command goes on from it", file=sys.stderr)
        raise
    finally:
        progress.done()
        if client is not None:
            client.close()
    wall = time.monotonic() - t0
    reads = stats["reads"]
    model = stats["insert_model"]
    if note := in_memory_note(index):
        _log(args, note)
    _log(args, f"{reads:,} reads, {stats['mapped']:,} mapped "
               f"({100 * stats['mapped'] / max(reads, 1):.2f}%), "
               f"{stats['properly_paired']:,} properly paired; {wall:.2f} s wall, "
               f"{(reads - stats.get('resumed_reads', 0)) / max(wall, 1e-9):,.0f} reads/s; "
               + (f"{stats['shards']:,} shards on Dask" if "shards" in stats
                  else f"SIMD {aligner.simd}"))
    if model["valid"]:
        _log(args, f"insert size {model['mean']:.1f} +- {model['sd']:.1f} "
                   f"from {model['pairs_used']:,} pairs")
    if "duplicates" in stats:
        _log(args, _duplicates_line(stats["duplicates"]))
    if stats.get("resumed_pairs"):
        _log(args, f"{stats['resumed_pairs']:,} of the pairs were aligned before the last "
                   "checkpoint (the figures above count them)")
    if args.metrics:
        stats["wall_seconds"] = wall
        Path(args.metrics).write_text(json.dumps(stats, indent=2) + "\n")
    return 0


def _duplicates_line(d: dict) -> str:
    return (f"duplicates: {d['reads_marked']:,} reads marked ({100 * d['fraction']:.2f}%; "
            f"{d['pair_duplicates']:,} of {d['pairs_examined']:,} pairs, "
            f"{d['unpaired_duplicates']:,} of {d['unpaired_examined']:,} unpaired reads)")


def _caller(args: argparse.Namespace, index: object = None, executor: object = None,
            again: bool = False):  # -> gmsaccel.call.Caller
    """The Caller of call's and run's options (again: built before, so its notes are not
    logged twice)."""
    from gmsaccel.call import Caller

    if args.alleles_only and not args.alleles:
        raise ValueError("--alleles-only needs --alleles")
    given = {"alleles": args.alleles, "alleles_only": args.alleles_only} if args.alleles else {}
    panel = getattr(args, "panel_of_normals", None)
    if args.sex and not args.ploidy_file:
        raise ValueError("--sex goes with --ploidy-file")
    somatic = getattr(args, "somatic", False)
    if somatic and (args.alleles or args.ploidy_file or args.gvcf):
        raise ValueError("--somatic goes with none of --alleles, --ploidy-file and --gvcf")
    if panel and not somatic:
        raise ValueError("--panel-of-normals goes with --somatic")
    # (a germline run's --germline-resource is for its contamination check, not the caller's)
    resource = getattr(args, "germline_resource", None) \
        if args.command == "call" or somatic else None
    not_in_resource = getattr(args, "af_not_in_resource", None)
    if resource and not somatic:
        raise ValueError("--germline-resource goes with --somatic")
    if not_in_resource is not None and not resource:
        raise ValueError("--af-not-in-resource goes with --germline-resource")
    contamination = getattr(args, "contamination", None)
    if contamination is not None and not resource:
        raise ValueError("--contamination goes with --germline-resource")
    tumour_in_normal = getattr(args, "tumour_in_normal", None)
    if tumour_in_normal is not None and not somatic:
        raise ValueError("--tumour-in-normal goes with --somatic")
    if somatic:
        given["somatic"] = True
        if panel:
            given["panel_of_normals"] = panel
        if resource:
            given["germline_resource"] = resource
        if not_in_resource is not None:
            given["af_not_in_resource"] = not_in_resource
        if contamination is not None:
            given["contamination"] = contamination
        if tumour_in_normal is not None:  # ("auto": 0 until its estimate)
            given["tumour_in_normal"] = 0.0 if tumour_in_normal == "auto" else tumour_in_normal
    caller = Caller(args.reference, ploidy=args.ploidy, device=args.device,
                    min_mapq=args.min_mapq, min_baseq=args.min_baseq, max_depth=args.max_depth,
                    threads=args.threads, index=index, executor=executor,
                    ploidy_file=args.ploidy_file, sex=args.sex, **given)
    if again:
        return caller
    if caller.given is not None:
        _log(args, f"{len(caller.given):,} given alleles from {args.alleles}")
        if note := caller.given.skipped_note():
            print(f"[gmsaccel] warning: {note}", file=sys.stderr)
    if caller.panel is not None:
        _log(args, f"{len(caller.panel):,} panel-of-normals alleles from {panel}")
        if note := caller.panel.skipped_note():
            print(f"[gmsaccel] warning: {note}", file=sys.stderr)
    return caller


def _dask_client(address: str):  # -> distributed.Client
    try:
        from distributed import Client
    except ImportError:
        raise RuntimeError("--dask-scheduler needs Dask: pip install 'gmsaccel[dist]'") from None
    try:
        return Client(address, timeout=30)
    except (OSError, TimeoutError) as e:
        raise RuntimeError(f"--dask-scheduler {address}: cannot connect ({e})") from None


def _return_freed_memory() -> None:
    """Hands memory freed to glibc's malloc back to the system (malloc_trim), so that a later
    stage's peak does not sit on top of an earlier one's; a no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _summary_line(stats: dict) -> str:
    v = stats["variants"]
    titv = f"{stats['titv']:.2f}" if stats["titv"] is not None else "n/a"
    ref_only = (f", {stats['ref_only']:,} given alleles no sample carries"
                if stats.get("ref_only") else "")
    return (f"{stats['pass']:,} PASS records ({stats['low_qual']:,} LowQual{ref_only}): "
            f"{v['SNV']:,} SNVs, {v['insertion']:,} insertions, {v['deletion']:,} deletions, "
            f"{v['MNP']:,} MNPs; Ti/Tv {titv}; het {stats['het']:,}, hom {stats['hom']:,}")


def _somatic_summary_line(stats: dict) -> str:
    v = stats["variants"]
    return (f"{stats['pass']:,} PASS somatic records ({stats['records'] - stats['pass']:,} "
            f"filtered): {v['SNV']:,} SNVs, {v['insertion']:,} insertions, "
            f"{v['deletion']:,} deletions, {v['MNP']:,} MNPs")


def cmd_call(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from gmsaccel.call import read_bed

    if args.normal and not args.somatic:
        raise ValueError("--normal goes with --somatic")
    if args.tumour_in_normal is not None and not (args.somatic and args.normal):
        raise ValueError("--tumour-in-normal goes with --somatic and --normal")
    auto_tin = args.tumour_in_normal == "auto"
    if auto_tin and args.output == "-":
        raise ValueError("--tumour-in-normal auto reads its first call back: give -o a file")
    if auto_tin:
        _check_output_dir(args.output)
    if args.somatic:
        if args.ploidy != 2:
            raise ValueError("--ploidy does not apply to --somatic (alleles are weighed at any "
                             "fraction)")
        if len(args.bams) != 1:
            raise ValueError(f"--somatic takes one IN.bam, the tumour's (got {len(args.bams)}); "
                             "give the normal's with --normal")
        args.bams = [*args.bams, *([args.normal] if args.normal else [])]
    t0 = time.monotonic()
    _check_output_dir(args.metrics)
    if args.contamination == "auto":  # estimated from the tumour's reads, then used
        if not (args.somatic and args.germline_resource):
            raise ValueError("--contamination goes with --germline-resource")
        from gmsaccel.alleles import sites_file
        from gmsaccel.contamination import estimate_contamination

        _check_output_dir(args.output)
        est = estimate_contamination(args.reference, args.bams[0],
                                     sites_file(args.germline_resource), threads=args.threads)
        _log(args, f"{args.bams[0]}: {est.line()}")
        if est.fraction >= MAX_MODELLED_CONTAMINATION:
            raise _core.InputError(
                f"{args.bams[0]}: --contamination auto: {100 * est.fraction:.1f}% of the reads "
                "look like another person's, too many to model (below 50%): a mixed sample? "
                "(give --contamination F to call it anyway)")
        args.contamination = est.fraction
        estimated = est.as_dict()
    else:
        estimated = None
    client = _dask_client(args.dask_scheduler) if args.dask_scheduler else None
    try:
        caller = _caller(args, executor=client)
        region = read_bed(args.regions_file, dict(caller.contigs)) if args.regions_file \
            else args.region

        def write(c: Caller, out: Path) -> dict:
            progress = CallProgress(args.quiet)
            try:
                return c.write_vcf(args.bams, out, region=region, gvcf=args.gvcf,
                                   command_line=["gmsaccel", *argv], progress=progress)
            finally:
                progress.done()

        tin = None
        if auto_tin:
            stats, tin = _call_tumour_in_normal_auto(
                args, caller, lambda: _caller(args, executor=client, again=True), write,
                Path(args.output))
        else:
            stats = write(caller, args.output)
    finally:
        if client is not None:
            client.close()
    wall = time.monotonic() - t0
    _warn_depth_cap(stats, args.max_depth)
    line = _somatic_summary_line(stats) if args.somatic else _summary_line(stats)
    _log(args, f"{line}; {wall:.2f} s wall")
    if args.metrics:
        extra = {"contamination_estimate": estimated} if estimated is not None else {}
        if auto_tin:
            extra["tumour_in_normal_estimate"] = tin.as_dict() if tin is not None else None
        if args.tumour_in_normal is not None:
            extra["tumour_in_normal_modelled"] = args.tumour_in_normal
        _write_json(Path(args.metrics), {**stats, **extra, "device": caller.device,
                                         "wall_seconds": wall})
    return 0


def _warn_depth_cap(stats: dict, max_depth: int) -> None:
    """Extreme piles are capped, never silently: say how many reads were left out."""
    capped = int(stats.get("reads", {}).get("depth_capped", 0))
    if capped:
        print(f"[gmsaccel] warning: {capped:,} reads skipped where depth exceeded --max-depth "
              f"{max_depth}", file=sys.stderr)


def _run_checkpoint_folder(outdir: Path, name: str, tmp_dir: str | None) -> Path:
    """Where run keeps its alignment's checkpoint (and so its sort spills): in --tmp-dir when
    given (named after OUTDIR too, as several runs may share one), else in OUTDIR."""
    if not tmp_dir:
        return outdir / f".{name}.align.checkpoint"
    tag = hashlib.sha256(str(outdir.resolve()).encode()).hexdigest()[:12]
    return Path(tmp_dir) / f".{name}.{tag}.align.checkpoint"


CONTAMINATION_WARNING = 0.02  # run warns from this fraction of another person's reads
# the caller models another person's reads below half of them (the estimate's upper bound)
MAX_MODELLED_CONTAMINATION = 0.5
# run warns from this share of the tumour's fractions in the normal, where not modelled
TUMOUR_IN_NORMAL_WARNING = 0.05


def _tumour_in_normal_check(args: argparse.Namespace, vcf: Path, normal: str,
                            modelled: float | None) -> TumourInNormalEstimate | None:
    """The tumour in the normal, estimated from a somatic VCF's records (logged), or None
    (warned) where they are too few; a warning where it is unmodelled and from
    TUMOUR_IN_NORMAL_WARNING, or where what was modelled is outside its interval (modelled
    None: auto's first call, which decides itself)."""
    from gmsaccel.tumour_in_normal import estimate_tumour_in_normal

    try:
        est = estimate_tumour_in_normal(vcf)
    except ValueError as e:
        print(f"[gmsaccel] warning: no tumour-in-normal estimate for {normal}: {e}",
              file=sys.stderr)
        return None
    _log(args, f"{normal}: {est.line()}")
    if modelled is None:
        return est
    if not modelled and est.excludes_zero() and est.fraction >= TUMOUR_IN_NORMAL_WARNING:
        print(f"[gmsaccel] warning: the normal {normal} shows the tumour's alleles at "
              f"{100 * est.fraction:.1f}% of their fraction in the tumour (tumour cells in "
              "the normal): somatic alleles fail germline or normal_artifact; call with "
              "--tumour-in-normal auto", file=sys.stderr)
    elif modelled and not est.low <= modelled <= est.high:
        print(f"[gmsaccel] warning: --tumour-in-normal {modelled:g} is outside the estimate's "
              f"95% interval for {normal} ({100 * est.low:.2f}-{100 * est.high:.2f}%)",
              file=sys.stderr)
    return est


def _call_tumour_in_normal_auto(
        args: argparse.Namespace, caller: Caller, remake: Callable[[], Caller],
        write: Callable[[Caller, Path], dict], out: Path,
        ) -> tuple[dict, TumourInNormalEstimate | None]:
    """--tumour-in-normal auto: a first call (none assumed, beside out), the estimate from
    its records, then out called again with it where its interval leaves out 0; else the
    first call is out (renamed into place with its index). Sets args.tumour_in_normal to
    what was modelled. Returns the call's statistics and the estimate."""
    first = out.with_name(f".first-pass.{out.name}")
    first_files, out_files = (_with_indexes(p, ".tbi", ".csi") for p in (first, out))
    args.tumour_in_normal = 0.0
    try:
        stats = write(caller, first)
        normal = stats["samples"][1]
        est = _tumour_in_normal_check(args, first, normal, None)
        share, why = est.to_model() if est is not None else (0.0, "no estimate")
        if share > 0:
            args.tumour_in_normal = share
            _log(args, f"--tumour-in-normal auto: {why}")
            stats = write(remake(), out)
        else:
            if est is not None and est.excludes_zero():  # (beyond what auto models)
                print(f"[gmsaccel] warning: --tumour-in-normal auto for {normal}: {why}",
                      file=sys.stderr)
            _log(args, f"--tumour-in-normal auto: {why}: the first call stands")
            for src, dst in zip(first_files, out_files, strict=True):
                if src.exists():
                    os.replace(src, dst)
                else:  # (an index of the other kind from an earlier file there)
                    dst.unlink(missing_ok=True)
    finally:
        for f in first_files:
            f.unlink(missing_ok=True)
    return stats, est


def _with_indexes(path: Path, *suffixes: str) -> list[Path]:
    """A run's output and the index files it may get (.csi: contigs over 2^29 bp)."""
    return [path, *(Path(f"{path}{s}") for s in suffixes)]


def _check_sample_name(name: str, option: str) -> None:
    """A sample name that is also the stem of a run's file names."""
    if not name or "/" in name or name.startswith(".") or any(c.isspace() for c in name):
        raise _core.InputError(f"{option} {name!r}: use a plain name (no '/', spaces or "
                               "leading '.')")


def _run_reads(reads1: str, reads2: str | None) -> tuple[list[str], list[str]]:
    """A run's FASTQ lanes, checked to be files (not pipes: a run may be resumed)."""
    from gmsaccel.align import fastq_lanes

    files1, files2 = _reads_files(reads1), _reads_files(reads2)
    for fq in [*files1, *(files2 or [])]:
        if not Path(fq).is_file():
            raise _core.InputError(f"{fq}: no such file")
    return fastq_lanes(files1, files2)


def _check_run_somatic(args: argparse.Namespace) -> None:
    """run's somatic options: what goes with what, before any work."""
    if not args.somatic:
        for given, option in ((args.normal_reads1, "--normal-reads1"),
                              (args.normal_reads2, "--normal-reads2"),
                              (args.normal_sample, "--normal-sample"),
                              (args.normal_bam, "--normal-bam"),
                              (args.normal_germline, "--normal-germline"),
                              (args.panel_of_normals, "--panel-of-normals"),
                              (args.af_not_in_resource is not None, "--af-not-in-resource"),
                              (args.contamination is not None, "--contamination"),
                              (args.tumour_in_normal is not None, "--tumour-in-normal")):
            if given:
                raise ValueError(f"{option} goes with --somatic")
        return
    if args.tumour_in_normal is not None and not (args.normal_reads1 or args.normal_bam):
        raise ValueError("--tumour-in-normal needs a normal (--normal-reads1 or --normal-bam)")
    if args.normal_reads1 and args.normal_bam:
        raise ValueError("the normal is --normal-reads1 (to align) or --normal-bam (aligned "
                         "already), not both")
    if args.normal_germline and not (args.normal_reads1 or args.normal_bam):
        raise ValueError("--normal-germline needs a normal (--normal-reads1 or --normal-bam)")
    if args.normal_reads2 and not args.normal_reads1:
        raise ValueError("--normal-reads2 goes with --normal-reads1")
    if args.normal_reads1 and not args.normal_sample:
        raise ValueError("--normal-reads1 needs --normal-sample (its read group's SM and file "
                         "names)")
    if args.normal_sample and not args.normal_reads1:
        raise ValueError("--normal-sample names the normal of --normal-reads1 (--normal-bam's "
                         "sample is its read groups' SM)")
    if args.normal_sample:
        _check_sample_name(args.normal_sample, "--normal-sample")
        if args.normal_sample.lower() == args.sample.lower():  # (file names: case-blind
            # file systems would make them one)
            raise ValueError(f"--normal-sample {args.normal_sample!r} is also the tumour's "
                             "--sample: they need names of their own")
    if args.normal_bam and not Path(args.normal_bam).is_file():
        raise _core.InputError(f"{args.normal_bam}: no such file")


def _contamination_check(args: argparse.Namespace, bam: Path, name: str) -> dict | None:
    """run's contamination check of one BAM (seconds, not a stage): the estimate for the
    metrics, or None (logged) where the BAM is too shallow for one; a warning from 2%. A BAM
    of several read groups (a sample's lanes) gets each one's estimate too (read_groups), and
    a warning for each from 2%. The log names the sample where a somatic run checks two."""
    from gmsaccel.contamination import estimate_contamination_by_read_group

    t0 = time.monotonic()
    try:  # (a BAM of one read group: the sample's estimate alone)
        est, groups = estimate_contamination_by_read_group(
            args.reference, bam, args.germline_resource, threads=args.threads, min_groups=2)
    except _core.InputError as e:  # (e.g. too shallow a BAM: the run stands)
        whose = f" for {name}" if args.somatic else ""
        print(f"[gmsaccel] warning: no contamination estimate{whose}: {e}", file=sys.stderr)
        return None
    _log(args, f"{name}: {est.line()}" if args.somatic else est.line())
    if est.fraction >= CONTAMINATION_WARNING:
        print(f"[gmsaccel] warning: {name}: {100 * est.fraction:.1f}% of the reads look like "
              f"another person's (95% interval {100 * est.low:.1f}-{100 * est.high:.1f}%): a "
              "mixed or contaminated sample?", file=sys.stderr)
    for g in groups:
        _log(args, f"{name}: {g.line()}")
        if g.fraction >= CONTAMINATION_WARNING:
            print(f"[gmsaccel] warning: {name}: read group {g.read_group}: "
                  f"{100 * g.fraction:.1f}% of its reads look like another person's (95% "
                  f"interval {100 * g.low:.1f}-{100 * g.high:.1f}%): a contaminated or swapped "
                  "lane?", file=sys.stderr)
    extra = {"read_groups": [g.as_dict() for g in groups]} if groups else {}
    return {"resource": str(Path(args.germline_resource).resolve()), **est.as_dict(), **extra,
            "seconds": time.monotonic() - t0}


def _alignment_metrics(astats: dict | None, contigs: Sequence[str], bam: Path, genome: int,
                       reference: str | None) -> dict:
    """One BAM's part of run's metrics: reads, mapping, duplicates and depth (astats: the
    alignment's statistics; None for a BAM aligned elsewhere, of which only the depth is
    read). reference: a CRAM's FASTA."""
    from gmsaccel.call import mean_depth

    if astats is None:
        try:
            depth = mean_depth(bam, genome, reference=reference)
        except ValueError:  # a CRAM aligned elsewhere: its index has no statistics
            depth = None
        return {"reads": None, "mapped": None, "mapped_fraction": None, "properly_paired": None,
                "properly_paired_fraction": None, "duplicates": None,
                "duplicate_fraction": None, "genome_length": genome, "mapped_by_contig": None,
                "mean_depth": depth}
    reads = astats["reads"]
    return {
        "reads": reads,
        "mapped": astats["mapped"],
        "mapped_fraction": astats["mapped"] / reads if reads else 0.0,
        "properly_paired": astats["properly_paired"],
        "properly_paired_fraction": astats["properly_paired"] / reads if reads else 0.0,
        "duplicates": astats.get("duplicates"),
        "duplicate_fraction": astats["duplicates"]["fraction"] if "duplicates" in astats
        else None,
        "genome_length": genome,
        # mapped records (primary and supplementary, what a BAM index counts) by contig, from
        # the run itself: a CRAM's index has no statistics
        "mapped_by_contig": dict(zip(contigs, astats["mapped_by_contig"] + [0] * len(contigs),
                                     strict=False)),
        "mean_depth": mean_depth(bam, genome, reference=reference,
                                 mapped=sum(astats["mapped_by_contig"])),
    }


def _call_normal_germline(args: argparse.Namespace, argv: Sequence[str], normal_bam: Path,
                          normal_vcf: Path, outputs: list[Path], within: Path | None,
                          index: object, client: object, earlier: Callable,
                          stamp: object) -> dict:
    """run --somatic --normal-germline's stage "call_normal": the normal's germline variants
    (a germline run's calling, the run's read filters) to normal_vcf; its summary."""
    from gmsaccel.resume import file_identity

    inputs = {"version": __version__, "reference": file_identity(args.reference),
              "bam": file_identity(normal_bam, within),
              "options": {"min_mapq": args.min_mapq, "min_baseq": args.min_baseq,
                          "max_depth": args.max_depth}}
    if done := earlier("call_normal", inputs, "calling the normal's germline variants again",
                       f"{normal_vcf} from an earlier run with the same normal and options: not "
                       "calling it again"):
        stats, seconds = done
    else:
        stamp.forget("call_normal")  # type: ignore[attr-defined]
        germline = argparse.Namespace(**{**vars(args), "somatic": False, "gvcf": False,
                                         "panel_of_normals": None, "contamination": None,
                                         "af_not_in_resource": None,
                                         "tumour_in_normal": None})
        caller = _caller(germline, index=index, executor=client, again=True)
        t0 = time.monotonic()
        progress = CallProgress(args.quiet)
        try:
            stats = caller.write_vcf([normal_bam], normal_vcf, command_line=["gmsaccel", *argv],
                                     progress=progress)
        finally:
            progress.done()
        seconds = time.monotonic() - t0
        stamp.finish("call_normal", inputs, outputs,  # type: ignore[attr-defined]
                     {"stats": stats, "seconds": seconds})
        _log(args, f"called the normal's germline variants in {seconds:.2f} s -> {normal_vcf}: "
                   f"{_summary_line(stats)}")
    return {"vcf": str(normal_vcf), "variants": stats["variants"],
            "pass": stats["pass"] - stats.get("ref_only", 0), "low_qual": stats["low_qual"],
            "titv": stats["titv"], "het": stats["het"], "hom": stats["hom"],
            "het_hom_ratio": stats["het_hom_ratio"], "call_seconds": seconds}


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from gmsaccel.align import INDEX_SUFFIX, Aligner, in_memory_note, open_index
    from gmsaccel.call import _require_engine
    from gmsaccel.ploidy import sample_sexes
    from gmsaccel.resume import RunStamp, file_identity

    name = args.sample
    _check_sample_name(name, "--sample")
    _check_run_somatic(args)
    # The samples this run aligns: the sample (with --somatic, the tumour), and the normal
    # where its reads are given.
    normal = args.normal_sample if args.normal_reads1 else None
    lanes = {name: _run_reads(args.reads1, args.reads2)}
    if normal:
        lanes[normal] = _run_reads(args.normal_reads1, args.normal_reads2)
    if args.interleaved and args.reads2:
        raise ValueError("--interleaved reads come in one file: give no reads2")
    if args.interleaved and args.normal_reads2:  # (the normal's reads are read as the tumour's)
        raise ValueError("--interleaved reads come in one file: give no --normal-reads2")
    if args.tmp_dir and not Path(args.tmp_dir).is_dir():
        raise _core.InputError(f"--tmp-dir {args.tmp_dir}: not a directory")
    if args.cram and args.reference.endswith(INDEX_SUFFIX):
        raise ValueError("--cram needs the reference FASTA as -f (CRAM is read against it)")
    _require_engine()  # before hours of alignment, not after
    if args.germline_resource:  # likewise the resource the contamination check reads
        from gmsaccel.alleles import sites_file

        args.germline_resource = sites_file(args.germline_resource)
    auto_contamination = args.contamination == "auto"
    if auto_contamination:
        if not args.germline_resource:
            raise ValueError("--contamination goes with --germline-resource")
        args.contamination = 0.0  # (until the tumour's estimate, once it is aligned)
    outdir = Path(args.outdir)
    if outdir.exists() and not outdir.is_dir():
        raise _core.InputError(f"{outdir}: not a directory")
    outdir.mkdir(parents=True, exist_ok=True)
    suffix = "cram" if args.cram else "bam"
    bams = {sample: outdir / f"{sample}.{suffix}" for sample in lanes}
    bam = bams[name]
    normal_bam = bams[normal] if normal else Path(args.normal_bam) if args.normal_bam else None
    vcf = outdir / f"{name}.vcf.gz"
    # --normal-germline: the normal's germline variants, named after this run (a normal shared
    # by several tumours, or with a run of its own, keeps its own files)
    normal_vcf = outdir / f"{name}.normal.vcf.gz" if args.normal_germline else None
    normal_vcf_files = _with_indexes(normal_vcf, ".tbi", ".csi") if normal_vcf else []
    metrics_path = outdir / f"{name}.metrics.json"
    report = None if args.no_report else outdir / f"{name}.report.html"
    gvcf = outdir / f"{name}.g.vcf.gz" if args.gvcf else None
    bam_files = {sample: _with_indexes(b, ".bai", ".csi", ".crai") for sample, b in bams.items()}
    all_bam_files = [p for files in bam_files.values() for p in files]
    vcf_files = _with_indexes(vcf, ".tbi", ".csi")
    if gvcf is not None:
        vcf_files += _with_indexes(gvcf, ".tbi", ".csi")
    finals = [*all_bam_files, *vcf_files, *normal_vcf_files, metrics_path]
    if report is not None:
        finals.append(report)
    if normal_bam is not None and not normal and \
            normal_bam.resolve() in {p.resolve() for p in finals}:
        raise _core.InputError(f"--normal-bam {normal_bam}: this run writes that file")
    existed = {p for p in finals if p.exists()}
    stamp_path = outdir / f".{name}.run.json"
    checkpoints = {sample: _run_checkpoint_folder(outdir, sample, args.tmp_dir)
                   if args.resume else None for sample in lanes}
    # An earlier run's checkpoint this one does not go on from (it can hold a genome's spills):
    # in OUTDIR, or in this run's --tmp-dir.
    for sample, checkpoint in checkpoints.items():
        for stale in {_run_checkpoint_folder(outdir, sample, None),
                      _run_checkpoint_folder(outdir, sample, args.tmp_dir)} - {checkpoint}:
            if stale.is_dir():
                try:
                    drop_checkpoint(stale)
                    _log(args, f"removed an earlier run's alignment checkpoint {stale}")
                except _core.InputError:
                    _log(args, f"left the alignment checkpoint {stale}: another run is using "
                               "it")
    stamp, why_not = RunStamp.load(stamp_path) if args.resume else (RunStamp(stamp_path), "")
    if why_not:
        _log(args, f"--resume: {why_not}: running every stage")
    reused: list[str] = []

    def earlier(stage: str, inputs: dict, again: str, same: str) -> tuple[dict, float] | None:
        """With --resume, the stage's statistics and seconds from the earlier run when its
        outputs still hold (logged); else None, and the stage (and those after it) runs."""
        done, why = stamp.reusable(stage, inputs)
        if args.resume and done is not None:
            reused.append(stage)
            _log(args, f"--resume: {same}")
            return done["stats"], done["seconds"]
        if args.resume and not why_not:
            _log(args, f"--resume: {again}: {why}")
        return None

    def align(sample: str, aligner: Aligner, index: object, t0: float) -> tuple[dict, float]:
        """The alignment stage of one sample (stage "align", the normal's "align_normal"): its
        statistics and seconds since t0, from an earlier run where --resume may reuse them."""
        stage = "align" if sample == name else "align_normal"
        reads1, reads2 = lanes[sample]
        out = bams[sample]
        inputs = {
            "version": __version__, "reference": file_identity(args.reference),
            # the index file align uses (the FASTA's saved one: its k, w and frequency cut shape
            # the records), none when it indexed the FASTA here
            "index": file_identity(index.path) if index.path else None,
            "reads1": [file_identity(f) for f in reads1],
            "reads2": [file_identity(f) for f in reads2] if reads2 else None,
            "options": {"sample": sample, "mark_duplicates": not args.no_mark_duplicates,
                        "copy_comment": args.copy_comment, "interleaved": args.interleaved,
                        "cram": args.cram}}
        again = "aligning again" if sample == name else f"aligning the normal {sample} again"
        if done := earlier(stage, inputs, again,
                           f"{out} is from an earlier run with the same reads, reference and "
                           "options: not aligning again"):
            return done
        stamp.forget(stage, "call")
        progress = Progress(args.quiet)
        checkpoint = checkpoints[sample]

        def aligned(stats: dict) -> None:  # (before the checkpoint goes)
            stamp.finish(stage, inputs, bam_files[sample],
                         {"stats": stats, "seconds": time.monotonic() - t0})
        try:
            astats = aligner.align_fastq(
                reads1, reads2 or None, out,
                read_group=_run_read_groups(sample, len(reads1)),
                mark_duplicates=not args.no_mark_duplicates, copy_comment=args.copy_comment,
                command_line=["gmsaccel", *argv], progress=progress, executor=client,
                fasta=args.reference if args.cram else None, interleaved=args.interleaved,
                memory_bytes=args.sort_memory << 20, tmp_dir=args.tmp_dir,
                checkpoint=checkpoint, checkpoint_pairs=args.checkpoint_pairs,
                log=lambda msg: _log(args, msg),
                spill_compression=args.spill_compression,
                on_complete=aligned if checkpoint is not None else None)
        finally:
            progress.done()
        seconds = time.monotonic() - t0
        stamp.finish(stage, inputs, bam_files[sample], {"stats": astats, "seconds": seconds})
        nonlocal index_noted
        if not index_noted and (note := in_memory_note(index)):
            _log(args, note)  # (once: the samples share the index)
            index_noted = True
        _log(args, f"aligned {astats['reads']:,} reads ({astats['mapped']:,} mapped) in "
                   f"{seconds:.2f} s -> {out}")
        if "duplicates" in astats:
            _log(args, _duplicates_line(astats["duplicates"]))
        _return_freed_memory()  # the aligner's buffers, before the next stage makes its own
        return astats, seconds

    index_noted = False
    # Likewise the cluster that will align and call: a wrong address fails first.
    client = _dask_client(args.dask_scheduler) if args.dask_scheduler else None
    t0 = time.monotonic()
    try:
        index = open_index(args.reference, threads=args.threads)
        aligner = Aligner(index, threads=args.threads, device=args.device)
        # The caller's options (and given alleles) are checked before hours of alignment.
        caller = _caller(args, index=index, executor=client)
        if gvcf is not None and caller.alleles_only:
            raise ValueError("--gvcf covers every position: it does not go with --alleles-only")
        if caller.ploidy_map is not None:  # the run's one sample: its sex is known now
            sample_sexes(args.sex, [name], caller.ploidy_map)
        if args.germline_resource:  # (its index, AF and contig names against the reference)
            _core.check_germline_resource(args.germline_resource,
                                          [c for c, _ in caller.contigs])
        normal_name = normal
        if normal_bam is not None and not normal:  # (--normal-bam: its sample and contigs)
            normal_name = caller.check_inputs([normal_bam])[0]
            if normal_name == name:
                raise _core.InputError(f"{normal_bam}: its sample {name!r} is also the "
                                       "tumour's --sample: they need names of their own")
        # (the first alignment's seconds count from the run's start, index loading included)
        aligned = {name: align(name, aligner, index, t0)}
        if normal:
            aligned[normal] = align(normal, aligner, index, time.monotonic())
        astats, align_seconds = aligned[name]
        contamination = normal_contamination = tin = None
        tin_checked = False  # (the tumour in the normal: estimated by auto's first call)
        if args.germline_resource and args.somatic:  # (before calling: auto models it)
            contamination = _contamination_check(args, bam, name)
            if normal_bam is not None:
                normal_contamination = _contamination_check(args, normal_bam, normal_name)
        modelled = args.contamination
        if auto_contamination:  # the tumour's estimate, modelled by the caller
            fraction = contamination["fraction"] if contamination is not None else None
            if fraction is None or fraction >= MAX_MODELLED_CONTAMINATION:
                why = "no estimate" if fraction is None else \
                    f"{100 * fraction:.1f}% is too many to model (below 50%)"
                print(f"[gmsaccel] warning: --contamination auto: {why} for {name}: "
                      "contamination not modelled", file=sys.stderr)
                modelled = None
            else:
                args.contamination = modelled = fraction
                caller = _caller(args, index=index, executor=client, again=True)
        call_bams = [bam, *([normal_bam] if normal_bam is not None else [])]
        call_inputs = {
            "version": __version__, "reference": file_identity(args.reference),
            "bam": file_identity(bam, outdir), "alleles": file_identity(args.alleles),
            "ploidy_file": file_identity(args.ploidy_file),
            "options": {"ploidy": args.ploidy, "min_mapq": args.min_mapq,
                        "min_baseq": args.min_baseq, "max_depth": args.max_depth,
                        "sex": args.sex, "alleles_only": args.alleles_only,
                        "gvcf": gvcf is not None}}
        if args.somatic:  # (none of these for a germline run: its stamps stay as they were)
            # (the run's own normal BAM relative to OUTDIR, as the tumour's)
            call_inputs["normal_bam"] = file_identity(normal_bam, outdir if normal else None)
            call_inputs["germline_resource"] = file_identity(args.germline_resource)
            call_inputs["panel_of_normals"] = file_identity(args.panel_of_normals)
            call_inputs["options"].update(
                somatic=True, contamination=args.contamination,
                af_not_in_resource=args.af_not_in_resource,
                tumour_in_normal=args.tumour_in_normal)
        also = f" and {gvcf}" if gvcf is not None else ""
        if done := earlier("call", call_inputs, "calling again",
                           f"{vcf}{also} from an earlier run with the same alignments and "
                           "options: not calling again"):
            vstats, call_seconds = done
        else:
            stamp.forget("call")
            t1 = time.monotonic()

            def write(c: Caller, out: Path) -> dict:
                call_progress = CallProgress(args.quiet)
                try:
                    return c.write_vcf(call_bams, out, command_line=["gmsaccel", *argv],
                                       progress=call_progress, gvcf_out=gvcf)
                finally:
                    call_progress.done()

            if args.tumour_in_normal == "auto":
                vstats, tin = _call_tumour_in_normal_auto(
                    args, caller, lambda: _caller(args, index=index, executor=client,
                                                  again=True), write, vcf)
                tin_checked = True
            else:
                vstats = write(caller, vcf)
            call_seconds = time.monotonic() - t1
            stamp.finish("call", call_inputs, vcf_files,
                         {"stats": vstats, "seconds": call_seconds})
            line = _somatic_summary_line(vstats) if args.somatic else _summary_line(vstats)
            _log(args, f"called in {call_seconds:.2f} s -> {vcf}{also}: {line}")
        if args.germline_resource and not args.somatic:  # (a quality check of the BAM)
            contamination = _contamination_check(args, bam, name)
        # the tumour in the normal: what the VCF was called with (its header), and an
        # estimate from its records (a quality check of the normal)
        tin_modelled = None
        if args.somatic and normal_bam is not None:
            from gmsaccel.tumour_in_normal import vcf_tumour_in_normal

            tin_modelled = vcf_tumour_in_normal(vcf)
            if not tin_checked:
                tin = _tumour_in_normal_check(args, vcf, normal_name, tin_modelled)
        normal_germline = None
        if normal_vcf is not None:  # the patient's inherited variants, from the normal
            normal_germline = _call_normal_germline(args, argv, normal_bam, normal_vcf,
                                                    normal_vcf_files, outdir if normal else None,
                                                    index, client, earlier, stamp)
        genome = sum(length for _, length in caller.contigs)
        contigs = [c.name for c in index.contigs]
        cram_fasta = args.reference if args.cram else None
        metrics = {
            "sample": name,
            "command": shlex.join(["gmsaccel", *argv]),
            "version": __version__,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            **_alignment_metrics(astats, contigs, bam, genome, cram_fasta),
            # the fraction of the reads from another person (with --germline-resource)
            "contamination": contamination,
            "reference": str(Path(args.reference).resolve()) if args.cram else None,
            # somatic: the sample is a tumour, called against the normal (if any)
            "somatic": bool(args.somatic),
            "normal": None,
            "variants": vstats["variants"],
            "records": vstats["records"],  # every record the VCF holds
            # PASS records some sample carries (given alleles no sample carries apart)
            "pass": vstats["pass"] - vstats.get("ref_only", 0),
            "ref_only": vstats.get("ref_only", 0),
            "low_qual": vstats["low_qual"],
            # filtered records by each filter they fail
            "filters": vstats.get("filters", {}),
            "titv": vstats["titv"],
            "het": vstats["het"],
            "hom": vstats["hom"],
            "het_hom_ratio": vstats["het_hom_ratio"],
            "align_seconds": align_seconds,
            "call_seconds": call_seconds,
            # stages whose outputs came from an earlier run (--resume); their statistics and
            # seconds are that run's
            "reused_stages": reused,
            # thread-seconds by stage: where each half of the run's time went
            "align_stage_seconds": astats["stage_seconds"],
            "call_stage_seconds": vstats["stage_seconds"],
            "bam": str(bam),
            "vcf": str(vcf),
            "gvcf": str(gvcf) if gvcf is not None else None,
            "report": str(report) if report is not None else None,
        }
        if args.somatic:
            metrics["contamination_modelled"] = modelled
            # the share of the tumour's fractions the normal was taken to show (None: no normal)
            metrics["tumour_in_normal_modelled"] = tin_modelled
        if normal_bam is not None:
            nstats, nseconds = aligned.get(normal, (None, None))
            metrics["normal"] = {
                "sample": normal_name,
                **_alignment_metrics(nstats, contigs, normal_bam, genome,
                                     args.reference if normal else None),
                "contamination": normal_contamination,
                # the share of the tumour's allele fractions the normal shows (its estimate)
                "tumour_in_normal": tin.as_dict() if tin is not None else None,
                "align_seconds": nseconds,
                "bam": str(normal_bam),
                "aligned_here": bool(normal),
                # --normal-germline: the normal's germline calls
                "germline": normal_germline,
            }
        _write_json(metrics_path, metrics)
        if report is not None:
            from gmsaccel.report import write_report

            try:
                write_report(report, metrics, bam, vcf)
            except Exception as e:  # BAM, VCF and metrics are done: keep them
                report.unlink(missing_ok=True)
                _log(args, f"warning: no report: {type(e).__name__}: {e}")
                metrics["report"] = report = None
                _write_json(metrics_path, metrics)
    except BaseException:
        # A failed run leaves none of its outputs behind but the stages' finished BAMs and VCF,
        # which --resume goes on from. Their writers only ever rename a complete file into
        # place, so one that is there is finished, recorded in the stamp or not yet (a signal
        # just after the writer's close).
        recorded = {p.resolve() for p in stamp.outputs()}
        kept, unrecorded = [], []
        for p in finals:
            if p in existed or not p.exists():
                continue
            if p in all_bam_files or p in vcf_files or p in normal_vcf_files:
                (kept if p.resolve() in recorded else unrecorded).append(str(p))
            else:
                p.unlink()
        if kept:
            print(f"[gmsaccel] kept {', '.join(kept)} (finished before the failure): rerun with "
                  "--resume to go on from them", file=sys.stderr)
        for checkpoint in checkpoints.values():
            if checkpoint is not None and (pairs := kept_checkpoint(checkpoint)) is not None:
                print(f"[gmsaccel] kept the alignment's checkpoint in {checkpoint} ({pairs:,} "
                      "pairs aligned): rerun with --resume to go on from it", file=sys.stderr)
        if unrecorded:
            print(f"[gmsaccel] kept {', '.join(unrecorded)} (complete, but the failure came "
                  "before its stage was recorded: --resume runs that stage again)",
                  file=sys.stderr)
        raise
    finally:
        if client is not None:
            client.close()
    depths = [f"mean depth {metrics['mean_depth']:.1f}x"]
    if metrics["normal"] is not None and metrics["normal"]["mean_depth"] is not None:
        depths.append(f"the normal's {metrics['normal']['mean_depth']:.1f}x")
    _log(args, f"{', '.join(depths)}; metrics -> {metrics_path}")
    if report is not None:
        _log(args, f"report -> {report}")
    return 0


def _write_json(path: Path, data: dict) -> None:
    write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def cmd_contamination(args: argparse.Namespace) -> int:
    from gmsaccel.contamination import (
        estimate_contamination,
        estimate_contamination_by_read_group,
    )

    _check_output_dir(args.json)
    t0 = time.monotonic()
    options = {"threads": args.threads, "min_af": args.min_af, "max_af": args.max_af,
               "max_sites": args.max_sites}
    groups = []
    if args.per_read_group:
        est, groups = estimate_contamination_by_read_group(args.reference, args.bam,
                                                           args.resource, **options)
    else:
        est = estimate_contamination(args.reference, args.bam, args.resource, **options)
    wall = time.monotonic() - t0
    print(f"{args.bam}\t{est.fraction:.5f}\t{est.low:.5f}\t{est.high:.5f}\t{est.sites}")
    for g in groups:
        print(f"RG\t{g.read_group}\t{g.fraction:.5f}\t{g.low:.5f}\t{g.high:.5f}\t{g.sites}")
    _log(args, f"{est.line()}; {wall:.2f} s wall")
    for g in groups:
        _log(args, g.line())
    if args.json:
        extra = {"read_groups": [g.as_dict() for g in groups]} if args.per_read_group else {}
        _write_json(Path(args.json), {"bam": args.bam, "resource": args.resource,
                                      **est.as_dict(), **extra, "wall_seconds": wall})
    return 0


def cmd_tumour_in_normal(args: argparse.Namespace) -> int:
    from gmsaccel.tumour_in_normal import estimate_tumour_in_normal, vcf_tumour_in_normal

    _check_output_dir(args.json)
    if args.vcf == "-":  # (its header is read twice: the estimate, then what it was called with)
        raise _core.InputError("-: give the VCF as a file (standard input is read only once)")
    t0 = time.monotonic()
    est = estimate_tumour_in_normal(args.vcf, args.tumour, args.normal)
    wall = time.monotonic() - t0
    called_with = vcf_tumour_in_normal(args.vcf)
    print(f"{args.vcf}\t{est.fraction:.5f}\t{est.low:.5f}\t{est.high:.5f}\t{est.sites}")
    _log(args, f"{est.line()}; {wall:.2f} s wall")
    if called_with > 0:  # (the records then show the normal's alleles as that TiN let pass)
        _log(args, f"warning: {args.vcf} was called with --tumour-in-normal {called_with:g}; "
                   "the estimate is meant for a call with none assumed")
    modelled, why = est.to_model()
    _log(args, f"to model it, call again with --tumour-in-normal {modelled:.4g}" if modelled
         else f"--tumour-in-normal auto would model none: {why}")
    if args.json:
        _write_json(Path(args.json), {"vcf": args.vcf, **est.as_dict(),
                                      "called_with": called_with, "auto_models": modelled,
                                      "wall_seconds": wall})
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from gmsaccel.align import cuda_module

    cuda = cuda_module()
    info = {
        "version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "simd_level": _core.simd_level(),
        "simd_max": _core.max_simd_level(),
        "htslib": _core.htslib_runtime_version(),
        # who inflates FASTQ.gz and BAM and deflates BAM: ISA-L where the build found it, else zlib
        "gzip_inflater": _core.fast_inflate_library() or "htslib (zlib)",
        "bam_inflater": _core.fast_inflate_library() if _core.fast_bam_inflate_available()
        else "htslib (zlib)",
        "bam_deflater": _core.fast_inflate_library() if _core.fast_bam_deflate_available()
        else "htslib (zlib)",
        # --spill-compression always
        "spill_codec": _core.fast_inflate_library() if _core.spill_compression_available()
        else "none (raw spills only)",
        "variant_caller": hasattr(_core, "call_region"),
        "cuda_compiled": cuda is not None,
        "gpu_available": bool(cuda is not None and cuda.device_count() > 0),
        # why not, when the build has kernels (e.g. a driver older than the toolkit)
        "gpu_problem": cuda.device_problem() if cuda is not None else "no CUDA kernels built",
        "devices": cuda.devices() if cuda is not None else [],
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:14} {v}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gmsaccel.demo import run_demo

    return run_demo(outdir=args.outdir, threads=args.threads, pairs=args.pairs, quiet=args.quiet)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gmsaccel",
        description="Short-read alignment and variant calling on GPUs and SIMD CPUs.",
        epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"gmsaccel {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    pi = sub.add_parser("index", help="build a reference index (REF.gxi)",
                        description="Index a FASTA reference (plain or gzip) for alignment.")
    pi.add_argument("reference", help="FASTA file (.fa, .fa.gz)")
    pi.add_argument("-o", "--output", help="index file (default: REFERENCE.gxi)")
    pi.add_argument("-k", type=int, default=21, help="minimizer k-mer length (default 21)")
    pi.add_argument("-w", type=int, default=11, help="minimizer window (default 11)")
    pi.add_argument("--max-occ", type=_positive_int, default=500,
                    help="skip minimizers seen more often than this (default 500)")
    pi.add_argument("-t", "--threads", type=_positive_int, default=1,
                    help="threads (default 1): the index is the same for any number")
    pi.add_argument("-q", "--quiet", action="store_true")

    def interleaved_option(pp: argparse.ArgumentParser) -> None:
        pp.add_argument("-p", "--interleaved", action="store_true",
                        help="reads1 holds the pairs, each pair's two reads one after the other "
                             "(as samtools fastq writes them; bwa mem -p)")

    def sort_options(pp: argparse.ArgumentParser) -> None:
        pp.add_argument("--sort-memory", type=_positive_int, default=64, metavar="MIB",
                        help="sort buffer in MiB; larger runs spill to temporary files "
                             "(default 64)")
        pp.add_argument("--spill-compression", choices=["never", "always"], default="never",
                        help="always: compress the sort's spills (builds with ISA-L: see "
                             "doctor's spill_codec) into about 40%% of the scratch space, for "
                             "about 3.5 CPU-seconds per GB of records; a 30x genome's spills "
                             "are about 225 GB uncompressed. The records are the same "
                             "(default never)")
        pp.add_argument("--tmp-dir", metavar="DIR",
                        help="sort spills go here, e.g. a node's local scratch (with "
                             "--dask-scheduler also the shard parts, which the workers must "
                             "reach: then shared storage) (default: beside the output)")

    def checkpoint_pairs_option(pp: argparse.ArgumentParser) -> None:
        pp.add_argument("--checkpoint-pairs", type=_positive_int,
                        default=DEFAULT_CHECKPOINT_PAIRS, metavar="N",
                        help="pairs (reads) between checkpoints (default "
                             f"{DEFAULT_CHECKPOINT_PAIRS:,})")

    def copy_comment_option(pp: argparse.ArgumentParser) -> None:
        pp.add_argument("-C", "--copy-comment", action="store_true",
                        help="copy each read's FASTQ comment onto its records as SAM tags (as "
                             "bwa mem -C; e.g. a UMI as RX:Z:...): tab-separated TAG:TYPE:VALUE "
                             "fields, else an error naming the record")

    pa = sub.add_parser(
        "align", help="align FASTQ reads to a sorted, indexed BAM",
        description="Align single or paired short reads; writes a coordinate-sorted BAM and its "
                    "index (or SAM/BAM to stdout with -o -).",
        epilog="Example: gmsaccel align ref.fa.gxi r1.fq.gz r2.fq.gz -o sample.bam -t 8 "
               "-R '@RG\\tID:s1\\tSM:sample'")
    pa.add_argument("reference", help="index (.gxi) or FASTA (its REF.gxi is used when present)")
    pa.add_argument("reads1", help="FASTQ or FASTA (plain, gzip or BGZF); '-' for stdin; a "
                                   "sample's lanes as a comma-separated list, read in turn")
    pa.add_argument("reads2", nargs="?", help="mate FASTQ for paired-end reads (lanes: the "
                                              "mates' files in the same order)")
    pa.add_argument("-o", "--output", default="-", help="output BAM/SAM ('-': stdout, default)")
    pa.add_argument("-t", "--threads", type=int, default=1, help="threads (default 1)")
    pa.add_argument("-R", "--read-group", action="append",
                    help="read group line, e.g. '@RG\\tID:x\\tSM:y'; for lanes, once for all "
                         "or once per lane, in the lanes' order (distinct IDs)")
    copy_comment_option(pa)
    interleaved_option(pa)
    pa.add_argument("--unsorted", action="store_true", help="write in input order, no index")
    pa.add_argument("--output-fmt", choices=["bam", "cram", "sam"],
                    help="output format (default: from the file name, .cram for CRAM with its "
                         ".crai, encoded against the reference FASTA; bam for stdout)")
    pa.add_argument("-l", "--compression-level", type=int, default=1, metavar="0-9",
                    help="compression level of the BAM (BGZF) or CRAM (default 1: fast; 6 for "
                         "archives)")
    pa.add_argument("--device", default="auto", help="auto, cpu or gpu[:N] (default auto)")
    pa.add_argument("--simd", choices=["scalar", "avx2", "avx512"],
                    help="force a SIMD level (default: the widest this CPU has)")
    pa.add_argument("--batch-size", type=_positive_int, default=10000,
                    help="reads (pairs) per batch (default 10000)")
    sort_options(pa)
    pa.add_argument("--mark-duplicates", action="store_true",
                    help="flag duplicate reads (0x400; same unclipped 5' ends and strands, the "
                         "highest base-quality sum kept) as the sorted BAM is written")
    pa.add_argument("--dask-scheduler", metavar="ADDRESS",
                    help="align the reads in shards on this Dask cluster (e.g. tcp://host:8786; "
                         "needs gmsaccel[dist]) and merge them here into the same BAM; its "
                         "workers must see the index and --tmp-dir at the same paths")
    pa.add_argument("--shard-pairs", type=_positive_int, default=DEFAULT_SHARD_PAIRS,
                    metavar="N", help="pairs (reads) per shard with --dask-scheduler "
                                      f"(default {DEFAULT_SHARD_PAIRS})")
    pa.add_argument("--checkpoint", metavar="DIR",
                    help="make the alignment restartable: every --checkpoint-pairs pairs the "
                         "sorted records so far are made durable in DIR (the sort spills go "
                         "there too: storage that outlives the job); the same command run "
                         "again after a cancel, time limit or crash goes on from the last "
                         "checkpoint, with the same records as one uninterrupted run (with "
                         "--dask-scheduler, the finished shards' parts are kept in DIR, which "
                         "the workers must see, and reused). DIR is removed once the output is "
                         "complete")
    checkpoint_pairs_option(pa)
    pa.add_argument("--metrics", help="write run statistics as JSON to this file")
    pa.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")

    def caller_options(pp: argparse.ArgumentParser) -> None:
        pp.add_argument("-t", "--threads", type=_positive_int, default=1,
                        help="threads (default 1)")
        pp.add_argument("--ploidy", type=int, choices=[1, 2], default=2,
                        help="1 (haploid) or 2 (diploid, default)")
        pp.add_argument("--min-mapq", type=_nonneg_int, default=0, metavar="Q",
                        help="skip reads with a lower mapping quality (default 0)")
        pp.add_argument("--min-baseq", type=_nonneg_int, default=13, metavar="Q",
                        help="bases below this quality are not evidence (default 13)")
        pp.add_argument("--max-depth", type=_positive_int, default=1000, metavar="N",
                        help="reads kept per position (default 1000)")
        pp.add_argument("--device", default="auto", help="auto, cpu or gpu[:N] (default auto)")
        pp.add_argument("--ploidy-file", metavar="FILE",
                        help="ploidy by region and sex, bcftools' format (CHROM FROM TO SEX "
                             "PLOIDY): e.g. a male's chrX outside the pseudo-autosomal regions "
                             "1, a female's chrY 0; elsewhere --ploidy")
        pp.add_argument("--sex", metavar="SPEC",
                        help="each sample's sex as the ploidy file spells it: one for all (M), "
                             "or NAME=SEX pairs (child=M,mother=F)")
        pp.add_argument("--alleles", metavar="VCF",
                        help="also genotype these alleles (SNVs and indels of a VCF/BCF, e.g. a "
                             "pharmacogenomic panel): each gets a record whatever the reads say, "
                             "GT 0/0 where the sample lacks it, ./. where no read covers it")
        pp.add_argument("--alleles-only", action="store_true",
                        help="with --alleles: write only the records holding a given allele")
        pp.add_argument("--dask-scheduler", metavar="ADDRESS",
                        help="run the shards on this Dask cluster (e.g. tcp://host:8786, "
                             "started by dask-jobqueue or dask-scheduler; needs gmsaccel[dist]):"
                             " the region shards of calling, and for run also the read shards "
                             "of alignment; its workers must see the reference, inputs and "
                             "outputs at the same paths")
        pp.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")

    def somatic_options(pp: argparse.ArgumentParser) -> None:
        """call's and run's options for somatic calling's filters."""
        pp.add_argument("--panel-of-normals", metavar="VCF",
                        help="with --somatic: alleles seen in normal samples (a VCF/BCF; SNVs "
                             "and indels, normalised as the caller's own); a somatic record of "
                             "one fails panel_of_normals: recurrent artifacts and germline "
                             "polymorphisms, above all for tumour-only calling")
        pp.add_argument("--af-not-in-resource", type=float, metavar="F",
                        help="with --somatic and --germline-resource: the population frequency "
                             "of an allele it lacks, in (0, 1); frequencies are taken within "
                             "[F, 1 - F] (default "
                             f"{_core.SOMATIC_THRESHOLDS['af_not_in_resource']:g})")
        pp.add_argument("--contamination", type=_fraction_or_auto, metavar="F|auto",
                        help="with --somatic and --germline-resource: the fraction of the "
                             "tumour's reads from another person, in [0, 0.5) (e.g. gmsaccel "
                             "contamination's estimate; auto: estimated from the tumour's reads "
                             "first, as gmsaccel contamination does; default 0, not modelled); "
                             "an allele likelier from that person's reads fails contamination")
        pp.add_argument("--tumour-in-normal", type=_fraction_or_auto, metavar="F|auto",
                        help="with --somatic and a normal: the tumour's cells in the normal (a "
                             "leukaemia's blood normal, tissue beside a tumour), as the share of "
                             "a somatic allele's tumour fraction the normal shows, in [0, 1); "
                             "NLOD and normal_artifact weigh the normal against that share "
                             "rather than none. auto: estimated from a first call (gmsaccel."
                             "tumour_in_normal), which is called again with the estimate where "
                             "its 95%% interval leaves out 0 (default 0, not modelled)")

    pc = sub.add_parser(
        "call", help="call SNVs and indels from sorted, indexed BAMs to a VCF",
        description="Call small variants jointly over one or more samples (one BAM/CRAM each, "
                    "coordinate-sorted and indexed). Output .vcf.gz is bgzipped and "
                    "tabix-indexed; '-o -' writes plain VCF to stdout.",
        epilog="Example: gmsaccel call -f ref.fa sample.bam -o sample.vcf.gz -t 8. Somatic: "
               "gmsaccel call -f ref.fa --somatic tumour.bam --normal normal.bam -o "
               "somatic.vcf.gz -t 8")
    pc.add_argument("-f", "--reference", required=True,
                    help="FASTA the reads were aligned to (or its .gxi index)")
    pc.add_argument("bams", nargs="+", metavar="IN.bam", help="sorted, indexed BAM/CRAM files")
    pc.add_argument("-o", "--output", default="-",
                    help="output VCF (.vcf.gz: bgzip + .tbi; .vcf: plain; '-': stdout)")
    where = pc.add_mutually_exclusive_group()
    where.add_argument("-r", "--region", action="append", metavar="CHR[:START-END]",
                       help="call only here (1-based, inclusive; repeatable)")
    where.add_argument("-R", "--regions-file", metavar="BED",
                       help="call only in the regions of this BED file")
    pc.add_argument("--gvcf", action="store_true",
                    help="gVCF: reference blocks banded by GQ between variants (one BAM)")
    pc.add_argument("--metrics", help="write call statistics as JSON to this file (variants, "
                                      "reads, thread-seconds by stage)")
    pc.add_argument("--somatic", action="store_true",
                    help="somatic calling: IN.bam is a tumour (one BAM); every allele its reads "
                         "show at any fraction is weighed (TLOD, and AF per sample) and written, "
                         "one record per allele, PASS or with the filters it fails: "
                         "weak_evidence, strand_bias, orientation_bias; against the --normal "
                         "germline, low_normal_depth and normal_artifact; with "
                         "--panel-of-normals panel_of_normals; with --germline-resource "
                         "germline (and contamination with --contamination). Without --normal, "
                         "only --germline-resource tells germline variants apart")
    pc.add_argument("--normal", metavar="BAM",
                    help="with --somatic: the matched normal's sorted, indexed BAM/CRAM "
                         "(written as the second sample)")
    pc.add_argument("--germline-resource", metavar="VCF",
                    help="with --somatic: population allele frequencies (a bgzipped, indexed "
                         "VCF or a BCF with INFO/AF, as gnomAD's), read by position; each record "
                         "gets POPAF (-log10) and GERMQ, and fails germline where the allele's "
                         "posterior of being germline, against somatic (and, with "
                         "--contamination, the other person's reads), is above 0.5, weighing its "
                         "frequency with the tumour's (and normal's) reads: what lets "
                         "tumour-only calling tell germline variants apart")
    somatic_options(pc)
    caller_options(pc)

    pr = sub.add_parser(
        "run", help="FASTQ to BAM, VCF and metrics for one sample (or a tumour and its normal)",
        description="Align reads (gmsaccel align), call variants (gmsaccel call) and write "
                    "OUTDIR/NAME.bam, OUTDIR/NAME.vcf.gz, OUTDIR/NAME.metrics.json and "
                    "OUTDIR/NAME.report.html (with --gvcf also OUTDIR/NAME.g.vcf.gz). With "
                    "--somatic NAME is a tumour and NAME.vcf.gz its somatic variants; the "
                    "normal's reads (--normal-reads1) are aligned to OUTDIR/NORMAL.bam.",
        epilog="Example: gmsaccel run -f ref.fa r1.fq.gz r2.fq.gz --sample NA12878 -o out -t 8. "
               "A tumour and its normal: gmsaccel run -f ref.fa t1.fq.gz t2.fq.gz --sample T1 "
               "--somatic --normal-reads1 n1.fq.gz --normal-reads2 n2.fq.gz --normal-sample N1 "
               "--germline-resource gnomad.vcf.gz -o out -t 8")
    pr.add_argument("-f", "--reference", required=True, help="FASTA (or its .gxi index)")
    pr.add_argument("reads1", help="FASTQ or FASTA (plain, gzip or BGZF); a sample's lanes as "
                                   "a comma-separated list, read in turn")
    pr.add_argument("reads2", nargs="?", help="mate FASTQ for paired-end reads (lanes: the "
                                              "mates' files in the same order)")
    pr.add_argument("--sample", required=True, help="sample name (read group SM, file names)")
    pr.add_argument("-o", "--outdir", required=True, help="output directory (created)")
    pr.add_argument("--no-mark-duplicates", action="store_true",
                    help="do not flag duplicate reads in the BAM (marked by default; the caller "
                         "skips them)")
    pr.add_argument("--resume", action="store_true",
                    help="go on from an earlier run of this sample in OUTDIR that failed, was "
                         "cancelled or ran out of time: the stages it finished (alignment, "
                         "calling) are not run again while their outputs, inputs and options "
                         "are unchanged (OUTDIR/.NAME.run.json records them), and an "
                         "alignment cut short goes on from its last checkpoint. Give it from "
                         "the first run on (e.g. in a job that the scheduler may requeue): "
                         "with --resume the alignment keeps checkpoints, and its sort spills, "
                         "in OUTDIR/.NAME.align.checkpoint (with --tmp-dir, in a folder there: "
                         "then one that outlives the job)")
    checkpoint_pairs_option(pr)
    pr.add_argument("--germline-resource", metavar="VCF",
                    help="population allele frequencies (a bgzipped, indexed VCF or BCF with "
                         "INFO/AF, as gnomAD's): each BAM's contamination by another person's "
                         "reads is estimated from its common SNVs (gmsaccel contamination) "
                         "into the metrics and report, with a warning on stderr from 2%% (a BAM "
                         "too shallow for it: a warning and no estimate); with --somatic the "
                         "caller also weighs germline origins with it, as call "
                         "--germline-resource does")
    pr.add_argument("--somatic", action="store_true",
                    help="the sample is a tumour: call somatic variants (as call --somatic) "
                         "against the normal of --normal-reads1 or --normal-bam, or without "
                         "one (tumour-only: give --germline-resource to tell germline variants "
                         "apart)")
    pr.add_argument("--normal-reads1", metavar="FASTQ",
                    help="with --somatic: the matched normal's reads, aligned as the tumour's "
                         "(lanes as a comma-separated list) to OUTDIR/NORMAL.bam (NORMAL: "
                         "--normal-sample)")
    pr.add_argument("--normal-reads2", metavar="FASTQ",
                    help="the normal's mate FASTQ for paired-end reads")
    pr.add_argument("--normal-sample", metavar="NORMAL",
                    help="the normal's sample name (read group SM, file names)")
    pr.add_argument("--normal-bam", metavar="BAM",
                    help="with --somatic: the matched normal aligned already (a sorted, indexed "
                         "BAM/CRAM, e.g. from its own run; several tumours of one patient can "
                         "share it), instead of --normal-reads1")
    pr.add_argument("--normal-germline", action="store_true",
                    help="with --somatic and a normal: also call the normal's germline "
                         "variants, as a germline run does (diploid throughout), to "
                         "OUTDIR/NAME.normal.vcf.gz (the patient's inherited variants, e.g. in "
                         "cancer predisposition genes)")
    somatic_options(pr)
    pr.add_argument("--no-report", action="store_true",
                    help="skip OUTDIR/NAME.report.html (summary page with charts)")
    pr.add_argument("--gvcf", action="store_true",
                    help="also OUTDIR/NAME.g.vcf.gz: the variants with GQ-banded reference "
                         "blocks (for joint genotyping), from the same calling pass")
    pr.add_argument("--cram", action="store_true",
                    help="write OUTDIR/NAME.cram (+ .crai), encoded against the reference "
                         "FASTA, instead of NAME.bam: about half the size")
    sort_options(pr)
    copy_comment_option(pr)
    interleaved_option(pr)
    caller_options(pr)

    pd = sub.add_parser("demo", help="align and call simulated reads on the bundled phage lambda",
                        description="Simulate reads with planted variants from the bundled "
                                    "genome, align them and report speed and accuracy.")
    pd.add_argument("-o", "--outdir", help="keep outputs here (default: a temporary directory)")
    pd.add_argument("-t", "--threads", type=int, default=2)
    pd.add_argument("--pairs", type=int, default=20000, help="read pairs to simulate")
    pd.add_argument("-q", "--quiet", action="store_true")

    pct = sub.add_parser(
        "contamination", help="estimate a sample's contamination by another person's reads",
        description="Estimate the fraction of a sample's reads that come from another person, "
                    "from its reads at a germline resource's common SNVs (see "
                    "gmsaccel.contamination). Prints BAM, fraction (0-1), the 95% interval's low "
                    "and high ends and the sites used, tab-separated.",
        epilog="Example: gmsaccel contamination -f ref.fa --resource gnomad.vcf.gz s.bam -t 8")
    pct.add_argument("-f", "--reference", required=True, help="FASTA (or its .gxi index)")
    pct.add_argument("--resource", required=True, metavar="VCF",
                     help="population allele frequencies: a bgzipped, indexed VCF or BCF with "
                          "INFO/AF (as for call --germline-resource)")
    pct.add_argument("bam", help="the sample's sorted, indexed BAM/CRAM")
    pct.add_argument("--min-af", type=float, default=0.01, metavar="F",
                     help="resource SNVs at least this common are used (default 0.01)")
    pct.add_argument("--max-af", type=float, default=0.99, metavar="F",
                     help="and at most this common (default 0.99)")
    pct.add_argument("--max-sites", type=_positive_int, default=250_000, metavar="N",
                     help="read the genome's shards, in an order spread over it, until they "
                          "hold N sites (default 250,000; a genome has millions)")
    pct.add_argument("--per-read-group", action="store_true",
                     help="also each read group's (lane's, library's) estimate, weighing its "
                          "reads against the genotypes the other read groups' reads give: one "
                          "more line each, RG, ID, fraction, low, high, sites")
    pct.add_argument("--json", metavar="FILE", help="also write the estimate as JSON here")
    pct.add_argument("-t", "--threads", type=_positive_int, default=1, help="threads (default 1)")
    pct.add_argument("-q", "--quiet", action="store_true", help="no summary line on stderr")

    ptin = sub.add_parser(
        "tumour-in-normal", help="estimate the share of a tumour's cells in its matched normal",
        description="Estimate the tumour's cells in its matched normal (TiN: the share of a "
                    "somatic allele's tumour fraction that the normal shows), from a "
                    "tumour/normal somatic VCF called with none assumed (gmsaccel call "
                    "--somatic --normal, or any VCF whose samples have AD and AF; see "
                    "gmsaccel.tumour_in_normal). Prints VCF, TiN (0-1), the 95% interval's "
                    "low and high ends and the candidate alleles used, tab-separated; give the "
                    "estimate to call --tumour-in-normal F to call again.",
        epilog="Example: gmsaccel tumour-in-normal tumour.vcf.gz --json tin.json")
    ptin.add_argument("vcf", help="the somatic VCF (plain, bgzipped or BCF)")
    ptin.add_argument("--tumour", metavar="NAME",
                      help="the tumour's sample (default: the header's ##tumor_sample)")
    ptin.add_argument("--normal", metavar="NAME",
                      help="the normal's sample (default: the header's ##normal_sample)")
    ptin.add_argument("--json", metavar="FILE", help="also write the estimate as JSON here")
    ptin.add_argument("-q", "--quiet", action="store_true", help="no summary lines on stderr")

    pdoc = sub.add_parser("doctor", help="report build, SIMD and GPU capabilities")
    pdoc.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # numpy's BLAS is never used here, and its thread pool (one thread per core, spinning after
    # start-up) only competes with the engine's threads; set before numpy is first imported.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in ("index", "align", "call", "run", "contamination", "tumour-in-normal"):
        # Our own errors name the file and the record in one line; htslib's log lines
        # ("[E::bgzf_read_block] ...") for the same failure would only bury them.
        import pysam

        pysam.set_verbosity(0)
    # (signal handlers can only be set from the main thread; cli.main called from another
    # thread keeps the default)
    # (not over a handler someone else set, nor over an inherited "ignore", as Python leaves
    # an ignored SIGINT ignored)
    previous = signal.getsignal(signal.SIGTERM)
    installed = threading.current_thread() is threading.main_thread() and \
        previous is signal.SIG_DFL
    if installed:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        if args.command in ("align", "call", "run"):
            _progress_seconds()  # a bad setting fails now, not after hours of alignment
        if args.command == "index":
            return cmd_index(args)
        if args.command == "align":
            return cmd_align(args, argv)
        if args.command == "call":
            return cmd_call(args, argv)
        if args.command == "run":
            return cmd_run(args, argv)
        if args.command == "contamination":
            return cmd_contamination(args)
        if args.command == "tumour-in-normal":
            return cmd_tumour_in_normal(args)
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "demo":
            return cmd_demo(args)
    except Terminated:
        print(f"gmsaccel {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"gmsaccel {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as e:
        msg = str(e) if not isinstance(e, OSError) or not e.filename else \
            f"{e.filename}: {e.strerror}"
        print(f"gmsaccel {args.command}: error: {msg}", file=sys.stderr)
        return 1
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
