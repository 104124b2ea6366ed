"""FastqReader: formats, batching, and one-line errors that name the file and the record."""

from __future__ import annotations

import gzip
import os
import random
import subprocess
import sys
from pathlib import Path

import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gmsaccel
from gmsaccel import _core

Record = tuple[str, str, str]


def random_records(rng: random.Random, n: int, max_len: int = 150) -> list[Record]:
    recs = []
    for i in range(n):
        length = rng.randint(0, max_len)
        seq = "".join(rng.choice("ACGTN") for _ in range(length))
        qual = "".join(chr(33 + rng.randint(0, 41)) for _ in range(length))
        recs.append((f"read_{i}/{1 + i % 2}", seq, qual))
    return recs


def fastq_text(recs: list[Record], eol: str = "\n") -> str:
    return "".join(f"@{n} comment x{eol}{s}{eol}+{eol}{q}{eol}" for n, s, q in recs)


def write(path: Path, text: str, kind: str) -> Path:
    if kind == "plain":
        path.write_text(text)
    elif kind == "gzip":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:  # bgzf
        plain = path.with_name(path.name + ".plain")
        plain.write_text(text)
        pysam.tabix_compress(str(plain), str(path), force=True)
        plain.unlink()
    return path


ISAL = bool(_core.fast_inflate_library())
# Every format through both inflaters where the build has ISA-L ("auto" then means ISA-L).
INFLATERS = ["auto", "htslib"] if ISAL else ["htslib"]


def read_all(
    path: Path,
    threads: int = 0,
    max_reads: int = 1000,
    inflater: str = "auto",
    read_ahead: bool = False,
) -> list[Record]:
    reader = _core.FastqReader(str(path), threads, inflater, read_ahead)
    out: list[Record] = []
    while True:
        batch = reader.read(max_reads)
        if not batch["names"]:
            return out
        assert batch["first_record"] == len(out) + 1
        out.extend(zip(batch["names"], batch["seqs"], batch["quals"], strict=True))


def test_input_error_is_value_error() -> None:
    assert gmsaccel.InputError is _core.InputError
    assert issubclass(gmsaccel.InputError, ValueError)


@pytest.mark.parametrize("kind", ["plain", "gzip", "bgzf"])
@pytest.mark.parametrize("threads", [0, 2])
@pytest.mark.parametrize("inflater", INFLATERS)
@pytest.mark.parametrize("read_ahead", [False, True])
def test_round_trip(
    tmp_path: Path, kind: str, threads: int, inflater: str, read_ahead: bool
) -> None:
    recs = random_records(random.Random(7), 2500)
    path = write(tmp_path / f"r.fq.{kind}", fastq_text(recs), kind)
    assert read_all(path, threads, inflater=inflater, read_ahead=read_ahead) == recs


def test_read_ahead_only_where_it_helps(tmp_path: Path) -> None:
    text = fastq_text(random_records(random.Random(10), 20))
    for kind, threads, expected in [
        ("plain", 0, False),  # nothing to inflate
        ("gzip", 0, True),
        ("bgzf", 0, True),
        ("bgzf", 2, False),  # htslib's threads inflate ahead already
    ]:
        path = write(tmp_path / f"a.fq.{kind}", text, kind)
        reader = _core.FastqReader(str(path), threads, "auto", True)
        assert reader.reads_ahead == expected, (kind, threads)
        assert not _core.FastqReader(str(path), threads).reads_ahead


def test_inflater_choice(tmp_path: Path) -> None:
    text = fastq_text(random_records(random.Random(8), 20))
    fast = "isa-l" if ISAL else "htslib"
    for kind, threads, expected in [
        ("plain", 0, "htslib"),
        ("gzip", 0, fast),
        ("gzip", 2, fast),  # plain gzip is one stream: threads would not help
        ("bgzf", 0, fast),
        ("bgzf", 2, "htslib"),  # BGZF blocks inflate in parallel in htslib
    ]:
        path = write(tmp_path / f"c.fq.{kind}", text, kind)
        assert _core.FastqReader(str(path), threads).inflater == expected, (kind, threads)
        assert _core.FastqReader(str(path), threads, "htslib").inflater == "htslib"
    with pytest.raises(ValueError, match="inflater must be"):
        _core.FastqReader(str(path), 0, "zlib")


@pytest.mark.parametrize("kind", ["plain", "gzip"])
@pytest.mark.parametrize("inflater", INFLATERS)
def test_lines_longer_than_the_read_buffer(tmp_path: Path, kind: str, inflater: str) -> None:
    rng = random.Random(9)
    recs = [
        (f"long{i}", "".join(rng.choice("ACGT") for _ in range(n)), "I" * n)
        for i, n in enumerate([700_000, 3, 300_000])
    ]
    path = write(tmp_path / f"long.fq.{kind}", fastq_text(recs), kind)
    assert read_all(path, inflater=inflater) == recs


def test_comments_crlf_and_empty_reads(tmp_path: Path) -> None:
    recs = [("a", "ACGT", "IIII"), ("b", "", ""), ("c", "N", "#")]
    path = write(tmp_path / "crlf.fq", fastq_text(recs, eol="\r\n"), "plain")
    batch = _core.FastqReader(str(path)).read(10)
    assert list(zip(batch["names"], batch["seqs"], batch["quals"], strict=True)) == recs
    assert batch["comments"] == ["comment x"] * 3


def test_empty_file_and_trailing_blank_lines(tmp_path: Path) -> None:
    assert read_all(write(tmp_path / "e.fq", "", "plain")) == []
    assert read_all(write(tmp_path / "e.fq.gz", "", "gzip")) == []
    text = fastq_text([("a", "AC", "II")]) + "\n\n"
    assert read_all(write(tmp_path / "t.fq", text, "plain")) == [("a", "AC", "II")]


def test_no_final_newline(tmp_path: Path) -> None:
    path = write(tmp_path / "n.fq", "@a\nACG\n+\nIII", "plain")
    assert read_all(path) == [("a", "ACG", "III")]


def test_batch_boundaries(tmp_path: Path) -> None:
    recs = [(f"r{i}", "A" * 10, "I" * 10) for i in range(25)]
    path = write(tmp_path / "b.fq", fastq_text(recs), "plain")
    reader = _core.FastqReader(str(path))
    sizes, firsts = [], []
    while batch := reader.read(10):
        if not batch["names"]:
            break
        sizes.append(len(batch["names"]))
        firsts.append(batch["first_record"])
    assert sizes == [10, 10, 5]
    assert firsts == [1, 11, 21]
    assert reader.records_read == 25

    # max_bases: 35 bases allow 3 reads of 10 (a 4th would exceed it).
    reader = _core.FastqReader(str(path))
    b1 = reader.read(100, max_bases=35)
    assert b1["names"] == ["r0", "r1", "r2"] and b1["first_record"] == 1
    b2 = reader.read(100, max_bases=35)
    assert b2["names"] == ["r3", "r4", "r5"] and b2["first_record"] == 4
    assert reader.records_read == 6
    # At least one record even when it alone exceeds max_bases.
    b3 = reader.read(100, max_bases=1)
    assert b3["names"] == ["r6"] and b3["first_record"] == 7
    # An exact fit stops the batch.
    assert reader.read(100, max_bases=20)["names"] == ["r7", "r8"]
    # No base budget at all still delivers one record (0 would read as the end of the file).
    assert reader.read(100, max_bases=0)["names"] == ["r9"]
    # A record held back over the limit comes first in the next batch, whatever its limit.
    assert reader.read(100, max_bases=15)["names"] == ["r10"]
    assert reader.read(100, max_bases=0)["names"] == ["r11"]
    assert reader.records_read == 12


def test_iteration(tmp_path: Path) -> None:
    recs = random_records(random.Random(3), 50)
    path = write(tmp_path / "i.fq.gz", fastq_text(recs), "gzip")
    with _core.FastqReader(str(path)) as reader:
        batches = list(reader)
    assert [n for b in batches for n in b["names"]] == [r[0] for r in recs]


name_chars = st.characters(min_codepoint=33, max_codepoint=126)
records_strategy = st.lists(
    st.tuples(
        st.text(name_chars, min_size=1, max_size=20),
        st.integers(0, 40),
        st.randoms(use_true_random=False),
    ),
    max_size=30,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spec=records_strategy,
    crlf=st.booleans(),
    kind=st.sampled_from(["plain", "gzip", "bgzf"]),
    inflater=st.sampled_from(INFLATERS),
)
def test_property_round_trip(
    tmp_path: Path,
    spec: list[tuple[str, int, random.Random]],
    crlf: bool,
    kind: str,
    inflater: str,
) -> None:
    recs = [
        (
            name,
            "".join(rnd.choice("ACGTNacgtn") for _ in range(n)),
            "".join(chr(rnd.randint(33, 126)) for _ in range(n)),
        )
        for name, n, rnd in spec
    ]
    path = write(tmp_path / f"p.fq.{kind}", fastq_text(recs, "\r\n" if crlf else "\n"), kind)
    assert read_all(path, max_reads=7, inflater=inflater) == recs


def wrapped_text(recs: list[Record], widths: list[int], fasta: bool) -> str:
    """Records with SEQ and QUAL wrapped at widths[i] characters (FASTA: no QUAL, '>' headers)."""

    def wrap(text: str, width: int) -> str:
        return "".join(text[i : i + width] + "\n" for i in range(0, len(text), width)) or "\n"

    out = []
    for (name, seq, qual), width in zip(recs, widths, strict=True):
        if fasta:
            out.append(f">{name} c\n{wrap(seq, width)}")
        else:
            out.append(f"@{name} c\n{wrap(seq, width)}+\n{wrap(qual, width)}")
    return "".join(out)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spec=records_strategy,
    width=st.integers(1, 40),
    fasta=st.booleans(),
    kind=st.sampled_from(["plain", "gzip"]),
)
def test_property_wrapped_fastq_and_fasta(
    tmp_path: Path, spec: list[tuple[str, int, random.Random]], width: int, fasta: bool, kind: str
) -> None:
    # Quality strings start with '@' and '+' often: wrapped QUAL lines are ended by length.
    recs = [
        (
            name,
            "".join(rnd.choice("ACGTN") for _ in range(n)),
            "".join(rnd.choice("@+!I#") for _ in range(n)),
        )
        for name, n, rnd in spec
    ]
    widths = [width + i % 3 for i in range(len(recs))]
    text = wrapped_text(recs, widths, fasta)
    if fasta:  # FASTA reads between blank lines, as some writers leave them
        text = text.replace("\n>", "\n\n>")
    path = write(tmp_path / f"w.fq.{kind}", text, kind)
    got = read_all(path, max_reads=7)
    assert got == [(n, s, None if fasta else q) for n, s, q in recs]


HTSLIB_TEST = Path("/usr/share/htslib-test/test")  # Debian package htslib-test


def test_htslib_corpus_reads_as_pysam_reads_it() -> None:
    """htslib's own FASTQ/FASTA test files (wrapped records, CASAVA and SAM-tag comments, long
    headers, qualities starting with '@'): every record as pysam's FastxFile reads it."""
    files = sorted(HTSLIB_TEST.glob("**/*.f[aq]"))
    if not files:
        pytest.skip("htslib-test is not installed")
    checked = 0
    for path in files:
        # (pysam keeps all but the first of the blanks before a comment; they separate, here)
        expected = [
            (r.name, (r.comment or "").lstrip(" \t"), r.sequence, r.quality)
            for r in pysam.FastxFile(str(path))
        ]
        if any(not name for name, *_ in expected):
            # A record without a name cannot become a BAM record: refused, naming the record.
            first = next(i for i, (name, *_) in enumerate(expected) if not name) + 1
            expect_error(path, f"record {first}", "empty read name")
            continue
        got = []
        for batch in _core.FastqReader(str(path)):
            got.extend(
                zip(batch["names"], batch["comments"], batch["seqs"], batch["quals"], strict=True)
            )
        assert got == expected, path
        checked += 1
    assert checked >= 20


def test_errors_in_wrapped_records(tmp_path: Path) -> None:
    cases = {
        # QUAL runs past SEQ's length on its wrapped lines
        "@r1\nAC\nGT\n+\nIII\nII\n": "SEQ and QUAL lengths differ (4 vs 5)",
        # the file ends inside wrapped QUAL
        "@r1\nAC\nGT\n+\nII\n": "QUAL shorter than SEQ",
        # a header where the '+' line should be, after wrapped SEQ
        "@r1\nAC\nGT\n@r2\nA\n+\nI\n": "missing '+' line (found \"@r2\")",
        # a FASTQ file does not turn into FASTA, nor the other way round
        GOOD + ">r3\nACG\n": "does not start with '@' (FASTQ file",
        ">r1\nACG\n>r2\nA\n@r3\nA\n+\nI\n": "does not start with '>' (FASTA file",
    }
    for i, (text, fragment) in enumerate(cases.items()):
        path = write(tmp_path / f"bad{i}.fq", text, "plain")
        expect_error(path, "record", fragment)
    # One-line SEQ with a short QUAL is still an error, not the start of wrapped QUAL.
    path = write(tmp_path / "short.fq", "@r1\nACGT\n+\nII\n@r2\nA\n+\nI\n", "plain")
    expect_error(path, "record 1 (r1): SEQ and QUAL lengths differ (4 vs 2)")
    path = write(tmp_path / "nul.fq", "\0x\nACGT\n+\nIIII\n", "plain")
    expect_error(path, "record 1", "does not start with '@' (FASTQ) or '>' (FASTA)")
    path = write(tmp_path / "noname.fa", ">r1\nAC\n> x\nA\n", "plain")
    expect_error(path, "record 2: empty read name after '>'")


def expect_error(path: Path, *fragments: str, inflater: str = "auto") -> str:
    with pytest.raises(gmsaccel.InputError) as info:
        read_all(path, inflater=inflater)
    msg = str(info.value)
    assert "\n" not in msg
    assert path.name in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


GOOD = "@r1\nACGT\n+\nIIII\n@r2\nAC\n+\nII\n"


def test_error_missing_plus(tmp_path: Path) -> None:
    path = write(tmp_path / "plus.fq", GOOD + "@r3\nACG\nIII\n@r4\nA\n+\nI\n", "plain")
    expect_error(path, "record 3", "(r3)", "missing '+' line")


def test_error_length_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path / "len.fq.gz", GOOD + "@read_77\nACGTA\n+\nIIII\n", "gzip")
    expect_error(path, "record 3 (read_77): SEQ and QUAL lengths differ (5 vs 4)")


def test_error_bad_header(tmp_path: Path) -> None:
    path = write(tmp_path / "hdr.fq", GOOD + "r3\nACG\n+\nIII\n", "plain")
    expect_error(path, "record 3", "does not start with '@'")
    path = write(tmp_path / "hdr.txt", "read r1 ACGT\n", "plain")
    expect_error(path, "record 1", "does not start with '@' (FASTQ) or '>' (FASTA)")


def test_error_blank_line_inside(tmp_path: Path) -> None:
    path = write(tmp_path / "blank.fq", "@r1\nA\n+\nI\n\n@r2\nA\n+\nI\n", "plain")
    expect_error(path, "record 2")


@pytest.mark.parametrize(
    "tail", ["@r3\n", "@r3\nACG\n", "@r3\nACG\n+\n"], ids=["header", "seq", "plus"]
)
def test_error_truncated_record(tmp_path: Path, tail: str) -> None:
    path = write(tmp_path / "trunc.fq", GOOD + tail, "plain")
    expect_error(path, "record 3 (r3)", "truncated record")


@pytest.mark.parametrize("threads", [0, 2])
@pytest.mark.parametrize("inflater", INFLATERS)
def test_error_truncated_gzip(tmp_path: Path, threads: int, inflater: str) -> None:
    recs = random_records(random.Random(11), 400)
    full = write(tmp_path / "full.fq.gz", fastq_text(recs), "gzip").read_bytes()
    path = tmp_path / "cut.fq.gz"
    path.write_bytes(full[:-20])
    with pytest.raises(gmsaccel.InputError, match=r"cut\.fq\.gz: record \d+.*truncated or corrupt"):
        read_all(path, threads, inflater=inflater)


@pytest.mark.parametrize("inflater", INFLATERS)
@pytest.mark.parametrize("damage", ["crc", "trailing", "cut"])
@pytest.mark.parametrize("read_ahead", [False, True])
def test_error_corrupt_gzip(tmp_path: Path, inflater: str, damage: str, read_ahead: bool) -> None:
    recs = random_records(random.Random(13), 3000)  # several read-ahead blocks
    full = write(tmp_path / "ok.fq.gz", fastq_text(recs), "gzip").read_bytes()
    bad = {
        "crc": full[:-8] + bytes([full[-8] ^ 1]) + full[-7:],
        "trailing": full + b"junk",
        "cut": full[: len(full) * 2 // 3],
    }[damage]
    path = tmp_path / "bad.fq.gz"
    path.write_bytes(bad)
    with pytest.raises(gmsaccel.InputError) as info:
        read_all(path, inflater=inflater, read_ahead=read_ahead)
    msg = str(info.value)
    assert "bad.fq.gz: record " in msg and "truncated or corrupt compressed input" in msg, msg


@pytest.mark.parametrize("threads", [0, 2])
@pytest.mark.parametrize("inflater", INFLATERS)
def test_error_truncated_bgzf(tmp_path: Path, threads: int, inflater: str) -> None:
    recs = random_records(random.Random(12), 3000)
    full = write(tmp_path / "full.fq.bgz", fastq_text(recs), "bgzf").read_bytes()
    path = tmp_path / "cut.fq.bgz"
    path.write_bytes(full[: -28 - 100])  # drop the EOF block and the end of the last data block
    with pytest.raises(
        gmsaccel.InputError, match=r"cut\.fq\.bgz: record \d+.*truncated or corrupt"
    ):
        read_all(path, threads, inflater=inflater)


def test_error_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.fq"
    with pytest.raises(gmsaccel.InputError, match="nope.fq"):
        _core.FastqReader(str(path))


def test_stdin_gzip(tmp_path: Path) -> None:
    recs = random_records(random.Random(5), 200)
    code = (
        "from gmsaccel import _core\n"
        "r = _core.FastqReader('-')\n"
        "print(sum(len(b['names']) for b in r), r.records_read)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(gmsaccel.__file__).parent.parent))
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=gzip.compress(fastq_text(recs).encode()),
        capture_output=True,
        env=env,
        check=True,
    )
    assert proc.stdout.split() == [b"200", b"200"]


def test_pipes_keep_htslib(tmp_path: Path) -> None:
    # A FIFO cannot be reopened by name: the fast inflater and read-ahead are for regular files.
    recs = random_records(random.Random(14), 3000)
    data = gzip.compress(fastq_text(recs).encode())
    fifo = tmp_path / "r.fq.gz"
    os.mkfifo(fifo)
    src = tmp_path / "src.gz"
    src.write_bytes(data)
    # another process feeds the FIFO (opening it blocks until both ends are open)
    with subprocess.Popen(["dd", f"if={src}", f"of={fifo}", "bs=65536", "status=none"]) as feeder:
        reader = _core.FastqReader(str(fifo), 0, "auto", True)
        assert reader.inflater == "htslib" and not reader.reads_ahead
        got = []
        for batch in reader:
            got.extend(zip(batch["names"], batch["seqs"], batch["quals"], strict=True))
    assert feeder.returncode == 0
    assert got == recs
