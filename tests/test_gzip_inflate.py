"""The ISA-L gzip reader against Python's zlib: members, headers, chunk boundaries, errors."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gmsaccel
from gmsaccel import _core

pytestmark = pytest.mark.skipif(
    not _core.fast_inflate_library(), reason="this build has no ISA-L inflater"
)

FEXTRA, FNAME, FCOMMENT, FHCRC = 4, 8, 16, 2


def member(data: bytes, level: int = 6, flags: int = 0) -> bytes:
    """One gzip member written by hand, so that every optional header field can appear."""
    header = bytearray(b"\x1f\x8b\x08" + bytes([flags]) + struct.pack("<I", 12345) + b"\x00\x03")
    if flags & FEXTRA:
        extra = b"BC" + struct.pack("<H", 2) + b"\x10\x00"
        header += struct.pack("<H", len(extra)) + extra
    if flags & FNAME:
        header += b"reads.fq\x00"
    if flags & FCOMMENT:
        header += b"a comment\x00"
    if flags & FHCRC:
        header += struct.pack("<H", zlib.crc32(bytes(header)) & 0xFFFF)
    deflate = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    return bytes(header) + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def inflate(path: Path, input_chunk: int = 1 << 18, output_chunk: int = 1 << 18) -> bytes:
    return _core._inflate_gzip_file(str(path), input_chunk, output_chunk)


def payload(draw_bytes: bytes, repeat: int) -> bytes:
    # Repetitive text (long matches across chunk edges) mixed with incompressible bytes.
    return (b"@read\nACGTTGCA\n+\nIIIIIIII\n" * repeat) + draw_bytes


members_strategy = st.lists(
    st.tuples(
        st.binary(max_size=300),
        st.integers(0, 200),
        st.integers(0, 9),
        st.sampled_from([0, FEXTRA, FNAME, FCOMMENT, FHCRC, FEXTRA | FNAME | FCOMMENT | FHCRC]),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    members=members_strategy,
    input_chunk=st.one_of(st.integers(1, 40), st.integers(41, 5000)),
    output_chunk=st.integers(1, 3000),
)
def test_members_and_chunks_match_zlib(
    tmp_path: Path, members: list[tuple[bytes, int, int, int]], input_chunk: int, output_chunk: int
) -> None:
    datas = [payload(raw, repeat) for raw, repeat, _, _ in members]
    path = tmp_path / "m.gz"
    path.write_bytes(b"".join(member(payload(raw, repeat), level, flags)
                              for raw, repeat, level, flags in members))
    assert inflate(path, input_chunk, output_chunk) == b"".join(datas)


def test_large_member(tmp_path: Path) -> None:
    data = b"".join(
        b"@r%d\n%s\n+\n%s\n" % (i, b"ACGT"[i % 4 :] * 37, b"I" * (148 - i % 4))
        for i in range(20000)
    )
    path = tmp_path / "big.gz"
    path.write_bytes(member(data[:1000]) + member(data))
    assert inflate(path) == data[:1000] + data
    assert inflate(path, 4096, 777) == data[:1000] + data


def test_empty_members(tmp_path: Path) -> None:
    path = tmp_path / "e.gz"
    path.write_bytes(member(b"") + member(b"abc") + member(b""))
    assert inflate(path, 3, 2) == b"abc"


def expect_problem(path: Path, fragment: str, input_chunk: int = 1 << 18) -> None:
    with pytest.raises(gmsaccel.InputError, match=fragment):
        inflate(path, input_chunk)


@pytest.mark.parametrize("input_chunk", [1, 7, 1 << 18])
def test_errors(tmp_path: Path, input_chunk: int) -> None:
    good = member(b"hello world, " * 200)
    cases = {
        "cut.gz": (good[:-3], "stream cut short"),
        "cut_body.gz": (good[: len(good) // 2], "stream cut short"),
        "crc.gz": (good[:-8] + b"\x00\x00\x00\x00" + good[-4:], "checksum mismatch"),
        "size.gz": (good[:-4] + b"\x01\x00\x00\x00", "checksum mismatch"),
        "tail.gz": (good + b"trailing junk", "not gzip"),
        "zeros.gz": (good + b"\x00" * 12, "not gzip"),
        "method.gz": (good[:2] + b"\x07" + good[3:], "bad gzip header|not deflate"),
        "body.gz": (good[:12] + b"\xff" * 20 + good[32:], "corrupt deflate|checksum"),
    }
    for name, (data, fragment) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        expect_problem(path, fragment, input_chunk)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(gmsaccel.InputError, match="nope.gz: cannot open"):
        inflate(tmp_path / "nope.gz")
