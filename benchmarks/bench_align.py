#!/usr/bin/env python3
"""Alignment benchmark: gmsaccel against minimap2 and bwa mem, in one sitting, on one machine.

On the shared K. pneumoniae data set (shared/bench/prepare.sh), with the same thread count for
every tool, it measures:

1. ``gmsaccel index``: build time, index size and peak RSS (reported, not part of align timing);
2. ``gmsaccel align`` with that prebuilt index, to a coordinate-sorted BAM + .bai;
3. ``minimap2 -ax sr`` (prebuilt .mmi, not timed) ``| samtools sort`` + ``samtools index``;
4. ``bwa mem`` (bwa index from prepare.sh) ``| samtools sort`` + ``samtools index``;
5. mapping accuracy of every BAM with shared/bench/mapeval.py (MAPQ>=20);
6. optionally (``--memory-scaling`` or ``--full``): gmsaccel peak RSS on 100k pairs against the
   first 400k pairs of the full set.

Wall time is ``time.perf_counter`` around the whole command (pipeline and index step). Peak RSS
comes from ``/usr/bin/time -f %M`` per process, or from a fresh Python wrapper per process
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``) when GNU time is absent. For a pipeline the peaks of
its concurrent stages are summed (an upper bound of the pipeline's peak); a step that runs after
the pipeline (``samtools index``) counts on its own. Each timed command runs ``--repeats`` times;
the minimum wall time and the maximum peak RSS are reported.

Usage: python3 benchmarks/bench_align.py --threads 2 [--out results.json]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

TARGETS = {
    "wall_vs_minimap2": 1.0,  # gmsaccel wall / (minimap2 | samtools sort) wall, at most
    "wall_vs_bwa": 0.333,  # gmsaccel wall / (bwa mem | samtools sort) wall, at most
    "mapped_q20_pct": 98.75,  # % of reads mapped at MAPQ >= 20, at least
    "wrong_q20_pct": 0.01,  # % wrong among those, at most
    "rss_growth_4x": 1.10,  # peak RSS on 4x the reads / peak RSS on 1x, below
}
GNU_TIME = Path("/usr/bin/time")
# Runs argv[2:], then writes the child's peak RSS (kB on Linux) to argv[1]; exits with its status.
RSS_WRAPPER = (
    "import resource,subprocess,sys\n"
    "rc=subprocess.call(sys.argv[2:])\n"
    "open(sys.argv[1],'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(rc)"
)
SUBSET_PAIRS = 400_000


class BenchError(RuntimeError):
    """A benchmarked command failed."""


class BestOfRepeats:
    """A measurement repeated (walls_s, a dataclass field of the class using this): its best
    wall time, and its fields as a dict with that time."""

    walls_s: list[float]

    @property
    def wall_s(self) -> float:
        return min(self.walls_s)

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)  # type: ignore[call-overload]
        d["wall_s"] = self.wall_s
        return d


def finish(results: dict[str, object], report: Callable[[dict[str, object]], str],
           out: str | None) -> int:
    """A sitting's end: the load then, the report printed, the results as JSON to `out`; exit
    status 1 where a measurement failed."""
    results["machine"]["loadavg_end"] = list(os.getloadavg())  # type: ignore[index]
    print(report(results))
    if out:
        Path(out).write_text(json.dumps(results, indent=1) + "\n")
    return 1 if results["errors"] else 0


@dataclass
class Run(BestOfRepeats):
    """One benchmarked command: the best of its repeats, and its mapping accuracy."""

    tool: str
    dataset: str
    reads: int
    walls_s: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None
    mapeval: dict[str, float] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def reads_per_s(self) -> float:
        return self.reads / self.wall_s

    def as_dict(self) -> dict[str, object]:
        d = super().as_dict()
        d["reads_per_s"] = self.reads_per_s
        if self.mapeval:
            d["mapped_q20_pct"] = 100.0 * self.mapeval["mapped_q20_frac"]
            d["wrong_q20_pct"] = 100.0 * self.mapeval["wrong_q20_frac"]
        return d


class Timer:
    """Runs shell pipelines under a per-process peak-RSS probe, timing the whole command."""

    def __init__(self, method: str, workdir: Path, verbose: bool):
        if method == "auto":
            method = "time" if GNU_TIME.exists() else "python"
        if method == "time" and not GNU_TIME.exists():
            raise SystemExit(f"{GNU_TIME} not found (Debian package 'time'); use --rss python")
        self.method = method
        self.workdir = workdir
        self.verbose = verbose
        self.n = 0

    def _probe(self, argv: list[str], rss_file: Path) -> str:
        if self.method == "time":
            pre = [str(GNU_TIME), "-f", "%M", "-o", str(rss_file)]
        else:
            pre = [sys.executable, "-c", RSS_WRAPPER, str(rss_file)]
        return shlex.join(pre + argv)

    @staticmethod
    def _read_kb(path: Path) -> int:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        return int(lines[-1]) if lines else 0

    def run(
        self, pipeline: list[list[str]], then: list[list[str]] | None = None,
        stdout: Path | None = None, label: str = "",
    ) -> tuple[float, float]:
        """Runs ``pipeline[0] | pipeline[1] | ...`` then each of ``then`` in turn.

        Returns (wall seconds, peak RSS in MB). The stderr of every process goes to a log file,
        whose tail is shown when a process fails.
        """
        self.n += 1
        tag = f"{self.n:02d}"
        log = self.workdir / f"{tag}.log"
        rss = [self.workdir / f"{tag}.p{i}.rss" for i in range(len(pipeline))]
        post = [self.workdir / f"{tag}.t{i}.rss" for i in range(len(then or []))]
        err = f" 2>>{shlex.quote(str(log))}"
        script = " | ".join(self._probe(a, f) + err for a, f in zip(pipeline, rss, strict=True))
        if stdout is not None:
            script += f" > {shlex.quote(str(stdout))}"
        for a, f in zip(then or [], post, strict=True):
            script += " && " + self._probe(a, f) + err
        if self.verbose:
            print(f"  $ {script}", file=sys.stderr)
        t0 = time.perf_counter()
        proc = subprocess.run(["bash", "-c", "set -o pipefail; " + script],
                              stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise BenchError(f"{label or pipeline[0][0]} failed (exit {proc.returncode}):\n{tail}")
        peak_kb = sum(self._read_kb(f) for f in rss)
        for f in post:
            peak_kb = max(peak_kb, self._read_kb(f))
        return wall, peak_kb / 1024.0


def find_bench_kit(start: Path) -> Path | None:
    """The nearest ``shared/bench`` directory above ``start`` (/work/main or /work/wt/X)."""
    for parent in start.parents:
        kit = parent / "shared" / "bench"
        if (kit / "prepare.sh").is_file():
            return kit
    return None


def count_reads(fastq_gz: Path) -> int:
    out = subprocess.run(f"gzip -dc {shlex.quote(str(fastq_gz))} | wc -l", shell=True,
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[0]) // 4


def first_pairs(src: tuple[Path, Path], pairs: int, cache: Path) -> tuple[Path, Path]:
    """The first ``pairs`` read pairs of ``src``, made once in ``cache`` (not timed)."""
    out = []
    for i, s in enumerate(src, 1):
        dst = cache / f"first{pairs // 1000}k_{i}.fq.gz"
        if not dst.exists() or dst.stat().st_mtime < s.stat().st_mtime:
            tmp = dst.with_suffix(".tmp")
            subprocess.run(f"(gzip -dc {shlex.quote(str(s))} || true) | head -n {4 * pairs} "
                           f"| gzip -1 > {shlex.quote(str(tmp))}", shell=True, check=True)
            tmp.replace(dst)
        out.append(dst)
    return out[0], out[1]


def minimap2_index(ref: Path, cache: Path) -> Path:
    """The minimap2 short-read index of ``ref``, built once in ``cache`` (not timed), named
    after the reference's path too: data sets side by side may share a cache."""
    tag = hashlib.sha1(str(ref.resolve()).encode()).hexdigest()[:10]
    mmi = cache / f"{ref.stem}-{tag}.sr.mmi"
    if not mmi.exists() or mmi.stat().st_mtime < ref.stat().st_mtime:
        tmp = mmi.with_suffix(".tmp")
        subprocess.run(["minimap2", "-x", "sr", "-d", str(tmp), str(ref)], check=True,
                       stderr=subprocess.DEVNULL)
        tmp.replace(mmi)
    return mmi


def mapeval(kit: Path, bam: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, str(kit / "mapeval.py"), str(bam)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def tool_version(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    text = (p.stdout + p.stderr).strip().splitlines()
    ver = [ln for ln in text if ln.lower().startswith("version")]
    return (ver or text or ["?"])[0].strip()


def bench_setup(data_arg: str | None, workdir: str | None, index_arg: str | None,
                prefix: str, reads: list[str] | None = None
                ) -> tuple[Path, Path, Path, Path, Path]:
    """(data, r1, r2, work, index): the shared data set (or other reads), a work directory
    (a temporary one unless given) and a saved index of the data set's reference (built in the
    work directory unless given)."""
    data = Path(data_arg or Path.home() / ".cache/gmsaccel-bench/kp")
    r1, r2 = (Path(reads[0]), Path(reads[1])) if reads else \
        (data / "reads_1.fq.gz", data / "reads_2.fq.gz")
    if not r1.exists():
        kit = find_bench_kit(Path(__file__).resolve())
        raise SystemExit(f"{r1} not found: run {kit or 'shared/bench'}/prepare.sh first")
    work = Path(workdir or tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    index = Path(index_arg) if index_arg else work / "ref.gxi"
    if not index.exists():
        from gmsaccel.align import Index

        Index.build(data / "ref.fa").save(index)
    return data, r1, r2, work, index


def machine_info(gms: list[str] | None) -> dict[str, object]:
    cpu = "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, object] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "minimap2": tool_version(["minimap2", "--version"]),
        "bwa": tool_version(["bwa"]),
        "samtools": tool_version(["samtools", "--version"]),
    }
    if gms is not None:
        info["gmsaccel"] = tool_version(gms + ["--version"])
    return info


class Bench:
    def __init__(self, args: argparse.Namespace, kit: Path, data: Path, work: Path):
        self.args = args
        self.kit = kit
        self.data = data
        self.work = work
        self.t = args.threads
        self.ref = data / "ref.fa"
        self.timer = Timer(args.rss, work / "logs", args.verbose)
        self.gms = shlex.split(args.gmsaccel)
        self.gxi: Path | None = None
        self.mmi: Path | None = None
        self.errors: list[str] = []

    def _repeat(self, run: Run, fn: object) -> None:
        peaks = []
        for _ in range(self.args.repeats):
            wall, peak = fn()  # type: ignore[operator]
            run.walls_s.append(wall)
            peaks.append(peak)
        run.peak_rss_mb = max(peaks)

    def _bam(self, tool: str, dataset: str) -> Path:
        return self.work / f"{tool}.{dataset}.bam"

    def index(self) -> dict[str, float]:
        gxi = self.work / "ref.gxi"
        wall, peak = self.timer.run([self.gms + ["index", str(self.ref), "-o", str(gxi), "-q"]],
                                    label="gmsaccel index")
        self.gxi = gxi
        return {"build_s": wall, "size_mb": gxi.stat().st_size / 1e6, "peak_rss_mb": peak}

    def minimap2_index(self) -> dict[str, float]:
        """minimap2 -x sr -d, timed as gmsaccel's index is (with the same threads)."""
        mmi = self.work / "ref.sr.mmi"
        wall, peak = self.timer.run([["minimap2", "-x", "sr", "-t", str(self.t), "-d", str(mmi),
                                      str(self.ref)]], label="minimap2 index")
        self.mmi = mmi
        return {"build_s": wall, "size_mb": mmi.stat().st_size / 1e6, "peak_rss_mb": peak}

    def gmsaccel(self, dataset: str, r1: Path, r2: Path, reads: int, evaluate: bool = True) -> Run:
        assert self.gxi is not None
        bam = self._bam("gmsaccel", dataset)
        metrics = self.work / f"gmsaccel.{dataset}.metrics.json"
        argv = self.gms + ["align", str(self.gxi), str(r1), str(r2), "-o", str(bam),
                           "-t", str(self.t), "--metrics", str(metrics), "-q"]
        run = Run("gmsaccel", dataset, reads)
        self._repeat(run, lambda: self.timer.run([argv], label="gmsaccel align"))
        bai = [p for p in (Path(str(bam) + ".bai"), bam.with_suffix(".bai")) if p.exists()]
        if not bai:
            self.errors.append(f"gmsaccel align ({dataset}) wrote no .bai beside {bam}")
        run.extra["bai"] = bool(bai)
        if metrics.exists():
            run.extra["metrics"] = json.loads(metrics.read_text())
        if evaluate:
            run.mapeval = mapeval(self.kit, bam)
        return run

    def _sorted(self, tool: str, dataset: str, aligner: list[str], reads: int) -> Run:
        bam = self._bam(tool, dataset)
        sort = ["samtools", "sort", f"-@{self.t}", "-o", str(bam), "-"]
        index = ["samtools", "index", f"-@{self.t}", str(bam)]
        run = Run(tool, dataset, reads)
        self._repeat(run, lambda: self.timer.run([aligner, sort], then=[index], label=tool))
        run.mapeval = mapeval(self.kit, bam)
        return run

    def minimap2(self, dataset: str, r1: Path, r2: Path, reads: int, mmi: Path) -> Run:
        argv = ["minimap2", "-ax", "sr", "-t", str(self.t), str(mmi), str(r1), str(r2)]
        return self._sorted("minimap2+sort", dataset, argv, reads)

    def bwa(self, dataset: str, r1: Path, r2: Path, reads: int) -> Run:
        argv = ["bwa", "mem", "-t", str(self.t), "-v", "1", str(self.ref), str(r1), str(r2)]
        return self._sorted("bwa+sort", dataset, argv, reads)

    def attempt(self, what: str, fn: object) -> object:
        """Runs one measurement; a failure is recorded and reported, and the rest goes on."""
        print(f"[bench] {what}", file=sys.stderr, flush=True)
        try:
            return fn()  # type: ignore[operator]
        except (BenchError, subprocess.CalledProcessError, OSError, ValueError) as e:
            self.errors.append(f"{what}: {e}")
            print(f"[bench] FAILED {what}: {e}", file=sys.stderr, flush=True)
            return None


def fmt(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(results: dict[str, object]) -> str:
    lines = []
    idx = results.get("gmsaccel_index")
    for name, ds in results["datasets"].items():  # type: ignore[union-attr]
        lines.append(f"### {name}: {ds['pairs']:,} pairs ({ds['reads']:,} reads), "
                     f"{results['threads']} threads, min of {results['repeats']} run(s)\n")
        lines.append("| tool | wall s | reads/s | peak RSS MB | mapped@MAPQ>=20 % | wrong % |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        if not ds["runs"]:
            lines.append("| (no successful runs) | | | | | |")
        for r in ds["runs"].values():
            lines.append(
                f"| {r['tool']} | {r['wall_s']:.2f} | {r['reads_per_s']:,.0f} | "
                f"{fmt(r['peak_rss_mb'], '.0f')} | {fmt(r.get('mapped_q20_pct'), '.3f')} | "
                f"{fmt(r.get('wrong_q20_pct'), '.4f')} |")
        lines.append("")
        for key, text in (("wall_vs_minimap2", "gmsaccel wall / minimap2+sort wall"),
                          ("wall_vs_bwa", "gmsaccel wall / bwa+sort wall")):
            if key in ds["ratios"]:
                v = ds["ratios"][key]
                ok = verdict(v <= TARGETS[key])
                lines.append(f"- {text}: {v:.3f} (target <= {TARGETS[key]}) {ok}")
        g = ds["runs"].get("gmsaccel")
        if g and g.get("mapped_q20_pct") is not None:
            m, w = g["mapped_q20_pct"], g["wrong_q20_pct"]
            lines.append(f"- gmsaccel mapped@MAPQ>=20: {m:.3f}% (target >= "
                         f"{TARGETS['mapped_q20_pct']}%) {verdict(m >= TARGETS['mapped_q20_pct'])}")
            lines.append(f"- gmsaccel wrong@MAPQ>=20: {w:.4f}% (target <= "
                         f"{TARGETS['wrong_q20_pct']}%) {verdict(w <= TARGETS['wrong_q20_pct'])}")
        if lines[-1]:
            lines.append("")
    for tool, ix in (("gmsaccel", idx), ("minimap2", results.get("minimap2_index"))):
        if ix:
            lines.append(f"- {tool} index build: {ix['build_s']:.2f} s, {ix['size_mb']:.1f} MB, "
                         f"peak RSS {ix['peak_rss_mb']:.0f} MB (not part of align timing)")
    ms = results.get("memory_scaling")
    if ms:
        v, limit = ms["ratio"], TARGETS["rss_growth_4x"]
        lines.append(f"- gmsaccel peak RSS {ms['pairs_large']:,} pairs / {ms['pairs_small']:,} "
                     f"pairs: {ms['rss_large_mb']:.0f} / {ms['rss_small_mb']:.0f} MB = {v:.3f} "
                     f"(target < {limit}) {verdict(v < limit)}")
    lines += sitting_notes(results)
    return "\n".join(lines).rstrip() + "\n"


def sitting_notes(results: dict[str, object]) -> list[str]:
    """A report's closing lines: a warning when the machine was busy at the start (from
    results['machine']), and each of results['errors'] (its first and last lines)."""
    lines = []
    machine = results["machine"]
    load = machine.get("loadavg_start", [0.0])[0]  # type: ignore[union-attr]
    cpus = machine.get("cpus") or 1  # type: ignore[union-attr]
    if load > 0.5 * cpus:
        lines.append(f"- WARNING: 1-min load average {load:.1f} on {cpus} CPUs at the start: "
                     "other work competes with the timings; compare ratios, rerun when idle")
    for e in results["errors"]:  # type: ignore[union-attr]
        msg = [ln.strip() for ln in e.splitlines() if ln.strip()]
        last = f" ... {msg[-1]}" if len(msg) > 1 else ""
        lines.append(f"- ERROR: {msg[0] if msg else e}{last}")
    return lines


def resolve_data(args: argparse.Namespace, kit: Path | None,
                 need: tuple[str, ...] = ("ref.fa", "sub_1.fq.gz", "sub_2.fq.gz")
                 ) -> tuple[Path, Path]:
    """The shared kit and its kp/ data (made by prepare.sh when --data is not given), checked
    to hold the files `need` names."""
    if kit is None:
        raise SystemExit("no shared/bench directory above this script; pass --kit")
    if args.data:
        data = Path(args.data).resolve()
    else:
        out = subprocess.run(["bash", str(kit / "prepare.sh")], check=True,
                             capture_output=True, text=True).stdout
        data = Path(out.strip().splitlines()[-1])
    for name in need:
        if not (data / name).exists():
            raise SystemExit(f"{data / name} missing: run {kit / 'prepare.sh'}")
    return kit, data


def common_parser(description: str, cache_help: str, workdir_help: str
                  ) -> argparse.ArgumentParser:
    """Options every benchmark script shares; each adds its own."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", "-t", type=int, default=2, help="threads for every tool (2)")
    p.add_argument("--data", help="the kp/ data directory (default: what prepare.sh prints)")
    p.add_argument("--kit", help="the shared/bench directory (default: found above this script)")
    p.add_argument("--gmsaccel", default="gmsaccel", metavar="CMD",
                   help="gmsaccel command line, e.g. "
                        "\"env PYTHONPATH=/work/main/src python3 -m gmsaccel\" (default gmsaccel)")
    p.add_argument("--skip-gmsaccel", action="store_true", help="measure the peers only")
    p.add_argument("--repeats", type=int, default=1, help="runs per timed command; min wall (1)")
    p.add_argument("--rss", choices=["auto", "time", "python"], default="auto",
                   help="peak-RSS probe: GNU /usr/bin/time or a Python wrapper (auto)")
    p.add_argument("--cache", help=cache_help)
    p.add_argument("--workdir", help=workdir_help)
    p.add_argument("--out", help="write the results as JSON to this file")
    p.add_argument("--verbose", "-v", action="store_true", help="print each command")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = common_parser(__doc__.split("\n\n")[0],
                      "where the .mmi and read subsets are kept "
                      "(default: DATA/../bench_align-cache)",
                      "keep BAMs and logs here (default: a temporary directory)")
    p.add_argument("--skip-peers", action="store_true", help="measure gmsaccel only")
    p.add_argument("--skip-bwa", action="store_true",
                   help="leave bwa out (its index of a human-sized genome takes about an hour)")
    p.add_argument("--time-peer-index", action="store_true",
                   help="build minimap2's index in the sitting, timed (else cached, untimed)")
    p.add_argument("--full", action="store_true",
                   help="also run every tool on the full 500k-pair set, and memory scaling")
    p.add_argument("--memory-scaling", action="store_true",
                   help=f"gmsaccel peak RSS on 100k vs the first {SUBSET_PAIRS // 1000}k pairs")
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        p.error("--threads and --repeats must be >= 1")
    if args.skip_gmsaccel and args.skip_peers:
        p.error("nothing to measure with both --skip-gmsaccel and --skip-peers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kit = Path(args.kit).resolve() if args.kit else find_bench_kit(Path(__file__).resolve())
    kit, data = resolve_data(args, kit)
    peers = [] if args.skip_peers else ["minimap2"] + ([] if args.skip_bwa else ["bwa"])
    for tool in peers + ["samtools"]:
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found on PATH")
    cache = Path(args.cache) if args.cache else data.parent / "bench_align-cache"
    cache.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="bench_align.") as tmp:
        work = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        (work / "logs").mkdir(parents=True, exist_ok=True)
        b = Bench(args, kit, data, work)
        run_gms = not args.skip_gmsaccel
        results: dict[str, object] = {
            "machine": machine_info(b.gms if run_gms else None),
            "threads": args.threads, "repeats": args.repeats, "rss_probe": b.timer.method,
            "data": str(data), "targets": TARGETS, "datasets": {}, "errors": b.errors,
        }
        sets = [("sub", data / "sub_1.fq.gz", data / "sub_2.fq.gz")]
        if args.full:
            sets.append(("full", data / "reads_1.fq.gz", data / "reads_2.fq.gz"))
        mmi = None
        if args.time_peer_index and not args.skip_peers:
            results["minimap2_index"] = b.attempt("minimap2 index", b.minimap2_index)
            mmi = b.mmi
        elif not args.skip_peers:
            print("[bench] minimap2 index (not timed)", file=sys.stderr, flush=True)
            mmi = minimap2_index(b.ref, cache)
        if run_gms:
            results["gmsaccel_index"] = b.attempt("gmsaccel index", b.index)
        for name, r1, r2 in sets:
            reads = count_reads(r1) + count_reads(r2)
            runs: dict[str, Run] = {}
            jobs: list[tuple[str, object]] = []
            if run_gms and b.gxi is not None:
                jobs.append(("gmsaccel", lambda r1=r1, r2=r2, n=name, k=reads:
                             b.gmsaccel(n, r1, r2, k)))
            if not args.skip_peers:
                jobs.append(("minimap2", lambda r1=r1, r2=r2, n=name, k=reads:
                             b.minimap2(n, r1, r2, k, mmi)))
                if not args.skip_bwa:
                    jobs.append(("bwa", lambda r1=r1, r2=r2, n=name, k=reads:
                                 b.bwa(n, r1, r2, k)))
            for key, fn in jobs:
                run = b.attempt(f"{key} on {name}", fn)
                if isinstance(run, Run):
                    runs[key] = run
            ratios = {}
            if "gmsaccel" in runs:
                for key, peer in (("wall_vs_minimap2", "minimap2"), ("wall_vs_bwa", "bwa")):
                    if peer in runs:
                        ratios[key] = runs["gmsaccel"].wall_s / runs[peer].wall_s
            results["datasets"][name] = {  # type: ignore[index]
                "r1": str(r1), "r2": str(r2), "pairs": reads // 2, "reads": reads,
                "runs": {k: r.as_dict() for k, r in runs.items()}, "ratios": ratios,
            }
        sub = results["datasets"]["sub"]["runs"].get("gmsaccel")  # type: ignore[index]
        if (args.full or args.memory_scaling) and sub is not None:
            def scaling() -> dict[str, float]:
                r1, r2 = first_pairs((data / "reads_1.fq.gz", data / "reads_2.fq.gz"),
                                     SUBSET_PAIRS, cache)
                big = b.gmsaccel(f"first{SUBSET_PAIRS // 1000}k", r1, r2, 2 * SUBSET_PAIRS,
                                 evaluate=False)
                return {"pairs_small": sub["reads"] // 2, "pairs_large": SUBSET_PAIRS,
                        "rss_small_mb": sub["peak_rss_mb"], "rss_large_mb": big.peak_rss_mb,
                        "ratio": big.peak_rss_mb / sub["peak_rss_mb"],
                        "wall_large_s": big.wall_s, "reads_per_s_large": big.reads_per_s}
            results["memory_scaling"] = b.attempt("gmsaccel memory scaling", scaling)

    return finish(results, report, args.out)


if __name__ == "__main__":
    sys.exit(main())
