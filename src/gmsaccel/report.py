"""One self-contained HTML page per sample: run summary cards and inline SVG charts.

`write_report` reads the metrics written by `gmsaccel run`, the first `max_records` alignments
of the BAM (insert sizes, MAPQ), its index statistics (depth per contig) and the VCF (variant
density, QUAL). The page has inline CSS and SVG only: no scripts, fonts or network fetches.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pysam

from gmsaccel import __version__
from gmsaccel.outputs import write_text_atomically

BLUE, ORANGE, GREY, GREEN = "#3b6ea8", "#d9822b", "#9aa5b1", "#3c8d5a"
MAX_CONTIGS = 40  # contigs charted (the longest); the rest are counted in a note
MAX_BINS = 300  # bars per density chart; longer contigs get bins wider than 10 kb
DENSITY_BIN = 10_000

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;
 margin:0;background:#f4f6f8;color:#1f2933}
header{background:#1f3a5f;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:24px}
header .meta{opacity:.85;font-size:13px}
header code{background:rgba(255,255,255,.12);padding:1px 5px;border-radius:3px;
 word-break:break-all}
main{padding:18px 28px;max-width:1200px}
h2{font-size:17px;margin:26px 0 10px;color:#1f3a5f}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#fff;border-radius:6px;padding:10px 12px;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card .v{font-size:21px;font-weight:600}
.card .k{font-size:12px;color:#616e7c;text-transform:uppercase;letter-spacing:.03em}
.card .s{font-size:12px;color:#7b8794}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0;background:#fff;border-radius:6px;padding:10px 12px;
 box-shadow:0 1px 2px rgba(0,0,0,.08)}
figcaption{font-weight:600;margin-bottom:4px}
figure .note{font-size:12px;color:#616e7c;margin-top:2px}
svg{display:block;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#52606d}
.files{font-size:12px;color:#616e7c}
.files code{word-break:break-all}
"""


# ---------------------------------------------------------------------------------------------
# small SVG helpers


def _fmt(x: float) -> str:
    """Axis tick label: 1200 -> 1.2k, 3_000_000 -> 3M; fractions with 2 significant digits."""
    ax = abs(x)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if ax >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}" if x != int(x) else str(int(x))


def _nice_ticks(hi: float, n: int = 4) -> list[float]:
    """0 and a few round values up to about hi."""
    if hi <= 0:
        return [0.0, 1.0]
    raw = hi / n
    mag = 10 ** np.floor(np.log10(raw))
    step = float(min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw))
    top = step * np.ceil(hi / step - 1e-9)
    return [float(v) for v in np.arange(0, top + step / 2, step)]


@dataclass
class Series:
    values: Sequence[float]
    color: str
    label: str = ""


def bar_chart(edges: Sequence[float], series: Sequence[Series], *, xlabel: str, ylabel: str,
              width: int = 540, height: int = 230, stacked: bool = True) -> str:
    """Vertical bars over consecutive bins [edges[i], edges[i+1]); several series stack."""
    left, right, top, bottom = 52, 12, 12 if len(series) < 2 else 26, 38
    pw, ph = width - left - right, height - top - bottom
    nb = len(edges) - 1
    totals = np.zeros(nb)
    for s in series:
        totals += np.asarray(s.values, dtype=float)[:nb]
    ticks = _nice_ticks(float(totals.max()) if nb and totals.size else 0.0)
    ymax = ticks[-1] or 1.0
    x0, x1 = float(edges[0]), float(edges[-1]) if nb else 1.0
    span = (x1 - x0) or 1.0

    def sx(v: float) -> float:
        return left + (v - x0) / span * pw

    def sy(v: float) -> float:
        return top + ph - v / ymax * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img">']
    for t in ticks:
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#e4e7eb"/><text x="{left - 5}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{_fmt(t)}</text>')
    base = np.zeros(nb)
    for s in series:
        vals = np.asarray(s.values, dtype=float)[:nb]
        rects = []
        for i in np.flatnonzero(vals > 0):
            xa, xb = sx(float(edges[i])), sx(float(edges[i + 1]))
            w = max(xb - xa - (0.6 if xb - xa > 3 else 0), 0.6)
            ya, yb = sy(base[i] + vals[i]), sy(base[i])
            tip = escape(f"{_fmt(float(edges[i]))}–{_fmt(float(edges[i + 1]))}: "
                         f"{int(vals[i]) if vals[i] == int(vals[i]) else round(vals[i], 2)}"
                         + (f" {s.label}" if s.label else ""))
            rects.append(f'<rect x="{xa:.1f}" y="{ya:.1f}" width="{w:.1f}" '
                         f'height="{max(yb - ya, 0.5):.1f}"><title>{tip}</title></rect>')
        out.append(f'<g fill="{s.color}">{"".join(rects)}</g>')
        if stacked:
            base = base + vals
    # x axis: a handful of ticks at round positions within the range
    out.append(f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" '
               f'stroke="#9aa5b1"/>')
    for t in _nice_ticks(x1 - x0, 6):
        if t > span + 1e-9:
            break
        x = sx(x0 + t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + ph}" y2="{top + ph + 4}" '
                   f'stroke="#9aa5b1"/><text x="{x:.1f}" y="{top + ph + 16}" '
                   f'text-anchor="middle">{_fmt(x0 + t)}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle">'
               f'{escape(xlabel)}</text>')
    out.append(f'<text transform="translate(12 {top + ph / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle">{escape(ylabel)}</text>')
    if len(series) > 1:  # legend
        x = left
        for s in series:
            out.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{s.color}"/>'
                       f'<text x="{x + 14}" y="15">{escape(s.label)}</text>')
            x += 24 + 7 * len(s.label)
    out.append("</svg>")
    return "".join(out)


def hbar_chart(labels: Sequence[str], values: Sequence[float], *, xlabel: str,
               reference: float | None = None, width: int = 540) -> str:
    """Horizontal bars, one per label; an optional dashed reference line (e.g. the mean)."""
    label_w = min(max((len(lb) for lb in labels), default=4) * 7 + 10, 170)
    left, right, top, row = label_w, 50, 8, 18
    height = top + row * len(labels) + 34
    pw = width - left - right
    ticks = _nice_ticks(max([*values, reference or 0.0, 0.0]))
    xmax = ticks[-1] or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img">']
    axis_y = top + row * len(labels)
    for t in ticks:
        x = left + t / xmax * pw
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{axis_y}" '
                   f'stroke="#e4e7eb"/><text x="{x:.1f}" y="{axis_y + 14}" '
                   f'text-anchor="middle">{_fmt(t)}</text>')
    for i, (lb, v) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row
        shown = lb if len(lb) <= 24 else lb[:22] + "…"
        out.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">{escape(shown)}</text>'
                   f'<rect x="{left}" y="{y + 3}" width="{max(v / xmax * pw, 0.5):.1f}" '
                   f'height="{row - 6}" fill="{BLUE}"><title>{escape(lb)}: {v:.1f}</title>'
                   f'</rect><text x="{left + v / xmax * pw + 4:.1f}" y="{y + 13}">{v:.1f}</text>')
    if reference is not None and reference > 0:
        x = left + reference / xmax * pw
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{axis_y}" '
                   f'stroke="{ORANGE}" stroke-dasharray="4 3"/>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle">'
               f'{escape(xlabel)}</text></svg>')
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# data


@dataclass
class BamSample:
    records: int  # records read (at most max_records)
    tlen: np.ndarray  # |TLEN| of properly paired primary R1 records
    mapq: np.ndarray  # MAPQ of mapped primary records
    aligned_length: float  # mean reference span of mapped primary records
    contigs: list[tuple[str, int, int]]  # name, length, mapped reads (index statistics)


def sample_bam(bam: Path, max_records: int, mapped: dict[str, int] | None = None,
               reference: str | None = None) -> BamSample:
    """mapped: records mapped per contig where known (a CRAM's index has no such statistics);
    reference: a CRAM's FASTA."""
    tlen: list[int] = []
    mapq: list[int] = []
    span = 0
    n = 0
    with pysam.AlignmentFile(os.fspath(bam), reference_filename=reference) as f:
        if mapped is not None:
            stats = dict(mapped)
        else:
            try:
                stats = {s.contig: s.mapped for s in f.get_index_statistics()}
            except ValueError:  # no index
                stats = {}
        contigs = [(name, length, stats.get(name, 0))
                   for name, length in zip(f.references, f.lengths, strict=True)]
        for r in f.fetch(until_eof=True):
            n += 1
            if n > max_records:
                n = max_records
                break
            flag = r.flag
            if flag & 0x904:  # unmapped, secondary, supplementary
                continue
            mapq.append(r.mapping_quality)
            span += r.reference_length or 0
            if flag & 0x43 == 0x43:  # paired, proper pair, first in pair
                tlen.append(abs(r.template_length))
    return BamSample(n, np.asarray(tlen, dtype=np.int64), np.asarray(mapq, dtype=np.int64),
                     span / len(mapq) if mapq else 0.0, contigs)


@dataclass
class VcfSample:
    records: int
    truncated: bool
    contigs: list[tuple[str, int]]
    pass_pos: dict[str, list[int]]
    qual_pass: np.ndarray
    qual_other: np.ndarray


def sample_vcf(vcf: Path, max_records: int) -> VcfSample:
    pos: dict[str, list[int]] = {}
    qp: list[float] = []
    qo: list[float] = []
    n = 0
    truncated = False
    with pysam.VariantFile(os.fspath(vcf)) as vf:
        contigs = [(c, int(vf.header.contigs[c].length or 0)) for c in vf.header.contigs]
        for rec in vf.fetch() if vf.index is not None else vf:
            if n >= max_records:
                truncated = True
                break
            n += 1
            keys = rec.filter.keys()
            passed = not keys or keys == ["PASS"]
            if rec.qual is not None:
                (qp if passed else qo).append(rec.qual)
            if passed:
                pos.setdefault(rec.contig, []).append(rec.pos)
    return VcfSample(n, truncated, contigs, pos, np.asarray(qp), np.asarray(qo))


# ---------------------------------------------------------------------------------------------
# page


def _card(key: str, value: str, sub: str = "") -> str:
    s = f'<div class="s">{escape(sub)}</div>' if sub else ""
    return f'<div class="card"><div class="k">{escape(key)}</div>' \
           f'<div class="v">{escape(value)}</div>{s}</div>'


def _pct(x: Any) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "n/a"


def _num(x: Any, fmt: str = ",") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "n/a"


def _cards(m: dict[str, Any]) -> str:
    types = m.get("variants") or {}
    dups = m.get("duplicates")
    reads = m.get("reads")
    rows = [
        _card("Reads", _num(reads), f"{_num(m.get('mapped'))} mapped"),
        _card("Mapped", _pct(m.get("mapped_fraction"))),
        _card("Properly paired", _pct(m.get("properly_paired_fraction")),
              f"{_num(m.get('properly_paired'))} reads"),
        _card("Duplicates", _pct(dups["fraction"]) if dups else "not marked",
              f"{_num(dups['reads_marked'])} reads marked" if dups else ""),
        _card("Mean depth", f"{_num(m.get('mean_depth'), '.1f')}×",
              f"genome {_num(m.get('genome_length'))} bp"),
        *([_contamination_card("Contamination", cont)] if (cont := m.get("contamination"))
          else []),
        *(_somatic_cards(m) if m.get("somatic") else [
            _card("PASS variants", _num(m.get("pass")), f"{_num(m.get('low_qual'))} LowQual" +
                  (f", {_num(m['ref_only'])} given alleles not carried" if m.get("ref_only")
                   else ""))]),
        _card("SNVs", _num(types.get("SNV")),
              f"{_num(types.get('MNP'))} MNPs" if types.get("MNP") else ""),
        _card("Insertions", _num(types.get("insertion"))),
        _card("Deletions", _num(types.get("deletion"))),
        _card("Ti/Tv", _num(m.get("titv"), ".2f")),
        *([] if m.get("somatic") else [
            _card("Het / hom", _num(m.get("het_hom_ratio"), ".2f"),
                  f"{_num(m.get('het'))} het, {_num(m.get('hom'))} hom")]),
        _card("Align time", f"{_num(m.get('align_seconds'), '.1f')} s",
              f"{reads / m['align_seconds']:,.0f} reads/s"
              if isinstance(reads, int) and m.get("align_seconds") else ""),
        _card("Call time", f"{_num(m.get('call_seconds'), '.1f')} s"),
    ]
    return '<div class="cards">' + "".join(rows) + "</div>"


def _contamination_card(key: str, cont: dict[str, Any]) -> str:
    sub = (f"95% interval {100 * cont['low']:.2f}-{100 * cont['high']:.2f}%, "
           f"{cont['sites']:,} sites")
    lanes = [g for g in cont.get("read_groups") or [] if g.get("fraction") is not None]
    if lanes:  # (a sample's lanes: the one most another person's)
        worst = max(lanes, key=lambda g: g["fraction"])
        sub += (f"; {len(lanes)} read groups, up to {100 * worst['fraction']:.2f}% "
                f"({worst['read_group']})")
    return _card(key, f"{100 * cont['fraction']:.2f}%", sub)


def _somatic_cards(m: dict[str, Any]) -> list[str]:
    """A tumour's run (run --somatic): its somatic records, what filtered the others, and its
    normal's reads, depth and contamination."""
    filters = m.get("filters") or {}
    top = ", ".join(f"{name} {n:,}" for name, n in list(filters.items())[:3])
    cards = [_card("PASS somatic", _num(m.get("pass")),
                   f"of {_num(m.get('records'))} records"),
             _card("Filtered by", top or "none", "records failing each filter (top 3)")]
    n = m.get("normal")
    if not n:
        return [*cards, _card("Normal", "none", "tumour-only")]
    cards += [_card("Normal", str(n.get("sample")),
                    f"{_num(n.get('reads'))} reads" if n.get("reads") is not None
                    else "aligned elsewhere"),
              _card("Normal depth", f"{_num(n.get('mean_depth'), '.1f')}×")]
    if cont := n.get("contamination"):
        cards.append(_contamination_card("Normal contamination", cont))
    if tin := n.get("tumour_in_normal"):  # (the share of the tumour's fractions it shows)
        modelled = m.get("tumour_in_normal_modelled") or 0.0
        cards.append(_card("Tumour in normal", f"{100 * tin['fraction']:.2f}%",
                           f"95% interval {100 * tin['low']:.2f}-{100 * tin['high']:.2f}%; "
                           + (f"modelled at {100 * modelled:.2f}%" if modelled
                              else "not modelled")))
    if germ := n.get("germline"):  # (run --normal-germline)
        cards.append(_card("Normal germline", _num(germ.get("pass")),
                           f"PASS records; {_num(germ.get('het'))} het, "
                           f"{_num(germ.get('hom'))} hom"))
    return cards


def _figure(title: str, svg: str, note: str = "") -> str:
    n = f'<div class="note">{escape(note)}</div>' if note else ""
    return f"<figure><figcaption>{escape(title)}</figcaption>{svg}{n}</figure>"


def _empty(text: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 540 60" width="540" '
            f'height="60"><text x="10" y="34">{escape(text)}</text></svg>')


def _insert_chart(b: BamSample) -> str:
    t = b.tlen
    note = f"|TLEN| of {len(t):,} properly paired R1 records among the first {b.records:,}"
    if not len(t):
        return _figure("Insert size", _empty("no properly paired reads"), note)
    hi = max(int(np.percentile(t, 99.5)), 1)
    width = max(1, int(np.ceil(hi / 80)))
    edges = np.arange(0, hi + width + 1, width)
    counts, _ = np.histogram(np.minimum(t, edges[-1] - 1), bins=edges)
    med = float(np.median(t))
    note += f"; median {med:,.0f} bp, 5–95% {np.percentile(t, 5):,.0f}–" \
            f"{np.percentile(t, 95):,.0f} bp (last bar: ≥ {_fmt(float(edges[-2]))})"
    return _figure("Insert size", bar_chart(edges, [Series(counts, BLUE)],
                                            xlabel="insert size (bp)", ylabel="read pairs"),
                   note)


def _mapq_chart(b: BamSample) -> str:
    q = b.mapq
    note = f"{len(q):,} mapped primary records among the first {b.records:,}"
    if not len(q):
        return _figure("Mapping quality", _empty("no mapped reads"), note)
    top = max(int(q.max()), 60)
    counts = np.bincount(q, minlength=top + 1)
    note += f"; MAPQ 0: {100 * counts[0] / len(q):.1f}%, ≥ 30: " \
            f"{100 * (q >= 30).mean():.1f}%"
    return _figure("Mapping quality", bar_chart(np.arange(top + 2), [Series(counts, GREEN)],
                                                xlabel="MAPQ", ylabel="reads"), note)


def _depth_chart(b: BamSample, mean_depth: Any) -> str:
    contigs = sorted(b.contigs, key=lambda c: -c[1])
    shown = contigs[:MAX_CONTIGS]
    depths = [m * b.aligned_length / length if length else 0.0 for _, length, m in shown]
    note = f"mapped records × mean aligned length {b.aligned_length:.0f} bp / contig length"
    if isinstance(mean_depth, (int, float)):
        note += f"; dashed line: genome mean {mean_depth:.1f}×"
    if len(contigs) > len(shown):
        note += f"; the {len(shown)} longest of {len(contigs):,} contigs"
    if not shown:
        return _figure("Mean depth per contig", _empty("no contigs"), note)
    return _figure("Mean depth per contig",
                   hbar_chart([c[0] for c in shown], depths, xlabel="mean depth (×)",
                              reference=mean_depth if isinstance(mean_depth, (int, float))
                              else None), note)


def _qual_chart(v: VcfSample) -> str:
    allq = np.concatenate([v.qual_pass, v.qual_other])
    note = f"{len(v.qual_pass):,} PASS and {len(v.qual_other):,} filtered records"
    if v.truncated:
        note += f" (the first {v.records:,} records)"
    if not len(allq):
        return _figure("Variant QUAL", _empty("no variant records"), note)
    hi = max(float(np.percentile(allq, 99)), 1.0)
    edges = np.linspace(0, hi, 61)
    clip = np.nextafter(hi, 0)
    cp, _ = np.histogram(np.clip(v.qual_pass, 0, clip), bins=edges)
    co, _ = np.histogram(np.clip(v.qual_other, 0, clip), bins=edges)
    note += f"; last bar: QUAL ≥ {_fmt(float(edges[-2]))}"
    return _figure("Variant QUAL", bar_chart(
        edges, [Series(cp, BLUE, "PASS"), Series(co, GREY, "filtered")],
        xlabel="QUAL", ylabel="records"), note)


def _density_charts(v: VcfSample) -> tuple[list[str], list[str]]:
    contigs = sorted(v.contigs, key=lambda c: -c[1])
    with_calls = [c for c in contigs if c[1] > 0 and v.pass_pos.get(c[0])]
    shown = with_calls[:MAX_CONTIGS]
    figs = []
    if not shown:
        figs.append(_figure("Variant density", _empty("no PASS records")))
    for name, length in shown:
        pos = np.asarray(v.pass_pos.get(name, []), dtype=np.int64)
        nbins = int(np.ceil(length / DENSITY_BIN))
        width = DENSITY_BIN * int(np.ceil(nbins / MAX_BINS))
        edges = np.arange(0, length + width, width)
        edges[-1] = max(edges[-1], length)
        counts, _ = np.histogram(np.minimum(pos - 1, length - 1), bins=edges)
        per10k = counts * (DENSITY_BIN / width)
        note = f"{len(pos):,} PASS records over {length:,} bp; bins of {_fmt(width)}b"
        if width != DENSITY_BIN:
            note += " (bars show the mean per 10 kb)"
        if v.truncated:
            note += f"; from the first {v.records:,} records"
        figs.append(_figure(f"Variant density: {name}", bar_chart(
            edges, [Series(per10k, ORANGE)], xlabel=f"{name} position (bp)",
            ylabel="PASS per 10 kb", height=170), note))
    notes = []
    if len(with_calls) > len(shown):
        notes.append(f"Variant density shown for the {len(shown)} longest of "
                     f"{len(with_calls):,} contigs with PASS records.")
    if empty := [c[0] for c in contigs if not v.pass_pos.get(c[0])]:
        listed = ", ".join(empty[:20]) + (f" and {len(empty) - 20:,} more" if len(empty) > 20
                                          else "")
        notes.append(f"No PASS records on {len(empty):,} contig(s): {listed}.")
    return figs, notes


def render(metrics: dict[str, Any], bam: Path, vcf: Path, max_records: int = 200_000) -> str:
    # (run's metrics count mapped records per contig; a CRAM is read against its FASTA)
    b = sample_bam(bam, max_records, metrics.get("mapped_by_contig"), metrics.get("reference"))
    v = sample_vcf(vcf, 10 * max_records)
    sample = str(metrics.get("sample") or Path(bam).name)
    command = metrics.get("command") or ""
    if isinstance(command, list):
        command = " ".join(map(str, command))
    date = metrics.get("date") or _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    version = metrics.get("version") or __version__
    head = (f'<header><h1>{escape(sample)}</h1><div class="meta">gmsaccel {escape(str(version))}'
            f" · {escape(str(date))}</div>"
            + (f'<div class="meta">command: <code>{escape(str(command))}</code></div>'
               if command else "") + "</header>")
    charts = [_insert_chart(b), _mapq_chart(b), _depth_chart(b, metrics.get("mean_depth")),
              _qual_chart(v)]
    density, notes = _density_charts(v)
    files = " · ".join(f"<code>{escape(str(p))}</code>" for p in (bam, vcf))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(sample)} · gmsaccel report</title>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{CSS}</style></head><body>{head}<main>"
        f"<h2>Summary</h2>{_cards(metrics)}"
        f'<h2>Alignments</h2><div class="charts">{"".join(charts[:3])}</div>'
        f'<h2>Variants</h2><div class="charts">{charts[3]}{"".join(density)}</div>'
        + "".join(f'<p class="files">{escape(n)}</p>' for n in notes) +
        f'<p class="files">Files: {files}</p></main></body></html>\n')


def write_report(path: str | os.PathLike, metrics: dict[str, Any], bam: Path, vcf: Path,
                 max_records: int = 200_000) -> Path:
    """Writes the HTML report to `path` (under a temporary name, then renamed); returns it."""
    return write_text_atomically(path, render(metrics, Path(bam), Path(vcf), max_records))
