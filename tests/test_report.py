"""The HTML run report: written by `gmsaccel run`, parseable, escaped, skipped on request."""

from __future__ import annotations

import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import Dataset, run_cli

from gmsaccel import _core, cli
from gmsaccel.report import write_report

needs_engine = pytest.mark.skipif(not hasattr(_core, "call_region"),
                                  reason="calling engine (_core.call_region) not in this build")

VOID = {"meta", "br", "hr", "img", "input", "link"}


class StrictParser(HTMLParser):
    """Checks that every element is closed in order; counts tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.counts: dict[str, int] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> StrictParser:
    p = StrictParser()
    p.feed(text)
    p.close()
    assert not p.errors, p.errors[:5]
    assert p.stack == [], p.stack
    return p


@pytest.fixture(scope="module")
def run_out(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not hasattr(_core, "call_region"):
        pytest.skip("calling engine not in this build")
    outdir = tmp_path_factory.mktemp("run") / "out"
    proc = run_cli("run", "-f", dataset.ref, dataset.r1, dataset.r2, "--sample", "S1",
                   "-o", outdir, "-t", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    assert f"report -> {outdir / 'S1.report.html'}" in proc.stderr.decode()
    return outdir


@needs_engine
def test_run_writes_report(run_out: Path) -> None:
    assert sorted(os.listdir(run_out)) == [".S1.run.json", "S1.bam", "S1.bam.bai",
                                           "S1.metrics.json", "S1.report.html", "S1.vcf.gz",
                                           "S1.vcf.gz.tbi"]
    m = json.loads((run_out / "S1.metrics.json").read_text())
    assert m["report"] == str(run_out / "S1.report.html")
    assert m["command"].startswith("gmsaccel run -f ") and m["version"] and m["date"]
    text = (run_out / "S1.report.html").read_text()
    p = parse(text)
    assert p.counts.get("svg", 0) >= 4
    assert p.counts.get("script", 0) == 0
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # self-contained
    body = "".join(p.text)
    assert "S1" in body and m["command"] in body
    assert f"{m['reads']:,}" in body and f"{m['pass']:,}" in body
    assert f"{m['duplicates']['reads_marked']:,} reads marked" in body
    for title in ("Insert size", "Mapping quality", "Mean depth per contig", "Variant QUAL",
                  "Variant density: chrA", "Variant density: chrB"):
        assert title in body, title


@needs_engine
def test_no_report(dataset: Dataset, tmp_path: Path) -> None:
    proc = run_cli("run", "-f", dataset.ref, dataset.r1, dataset.r2, "--sample", "S2",
                   "-o", tmp_path, "--no-report", "-q")
    assert proc.returncode == 0, proc.stderr.decode()
    assert not list(tmp_path.glob("*.html"))
    assert json.loads((tmp_path / "S2.metrics.json").read_text())["report"] is None


@needs_engine
def test_failed_run_leaves_no_report(dataset: Dataset, tmp_path: Path) -> None:
    bad = tmp_path / "bad.fq"
    bad.write_text("@r1\nACGT\n+\nII\n")
    outdir = tmp_path / "out"
    proc = run_cli("run", "-f", dataset.ref, bad, "--sample", "x", "-o", outdir)
    assert proc.returncode == 1
    assert not outdir.exists() or os.listdir(outdir) == []


@needs_engine
def test_interrupted_report_keeps_finished_stages(dataset: Dataset, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The BAM and VCF were finished and recorded (run --resume goes on from them); the report
    # and the metrics, which mark a whole run, were not.
    def interrupted(path: Path, *args: object, **kw: object) -> Path:
        Path(path).write_text("<html>partial")
        raise KeyboardInterrupt

    monkeypatch.setattr("gmsaccel.report.write_report", interrupted)
    rc = cli.main(["run", "-f", str(dataset.ref), str(dataset.r1), str(dataset.r2),
                   "--sample", "x", "-o", str(tmp_path / "out"), "-q"])
    assert rc == 130
    assert sorted(os.listdir(tmp_path / "out")) == [".x.run.json", "x.bam", "x.bam.bai",
                                                    "x.vcf.gz", "x.vcf.gz.tbi"]


@needs_engine
def test_report_error_keeps_run(dataset: Dataset, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    def broken(path: Path, *args: object, **kw: object) -> Path:
        Path(path).write_text("<html>partial")
        raise ValueError("chart trouble")

    monkeypatch.setattr("gmsaccel.report.write_report", broken)
    rc = cli.main(["run", "-f", str(dataset.ref), str(dataset.r1), str(dataset.r2),
                   "--sample", "x", "-o", str(tmp_path)])
    assert rc == 0
    assert "warning: no report: ValueError: chart trouble" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == [".x.run.json", "x.bam", "x.bam.bai",
                                            "x.metrics.json", "x.vcf.gz", "x.vcf.gz.tbi"]
    assert json.loads((tmp_path / "x.metrics.json").read_text())["report"] is None


@needs_engine
def test_write_report_escapes_text(run_out: Path, tmp_path: Path) -> None:
    m = json.loads((run_out / "S1.metrics.json").read_text())
    m["sample"] = "a<b>&c"
    m["command"] = "gmsaccel run --sample '<script>alert(1)</script>'"
    out = write_report(tmp_path / "r.html", m, run_out / "S1.bam", run_out / "S1.vcf.gz")
    text = out.read_text()
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "a&lt;b&gt;&amp;c" in text
    p = parse(text)
    assert "".join(p.text).count("'<script>alert(1)</script>'") == 1
    assert os.listdir(tmp_path) == ["r.html"]  # no temporary left


@needs_engine
def test_write_report_tiny_sample(run_out: Path, tmp_path: Path) -> None:
    """One alignment and one variant record: every chart still renders (or says it is empty)."""
    m = {"sample": "S1"}  # the page copes with missing metrics too
    out = write_report(tmp_path / "r.html", m, run_out / "S1.bam", run_out / "S1.vcf.gz",
                       max_records=1)
    p = parse(out.read_text())
    assert p.counts["svg"] >= 4 and "n/a" in "".join(p.text)
