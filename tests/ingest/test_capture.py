"""Capture files: plain length-prefixed ITCH 5.0, read back in chunks; a truncated one is an error; gzipped
ones (as Nasdaq publishes them) read as a stream; the trading day from Nasdaq's file names."""

from __future__ import annotations

import datetime as dt
import gzip
import io
from pathlib import Path

import pytest

from ingest import itch
from ingest.capture import CaptureError, CaptureWriter, file_date, iter_messages, open_capture, timestamp_of
from ingest.messages import OrderDelete


def test_capture_format_is_plain_length_prefixed_itch() -> None:
    m = itch.encode(OrderDelete(1, 2, 0x010203040506, 99))
    buf = io.BytesIO()
    w = CaptureWriter(buf)
    w.write(m)
    w.write(m)
    assert buf.getvalue() == (b"\x00\x13" + m) * 2
    assert list(iter_messages(io.BytesIO(buf.getvalue()), chunk=5)) == [m, m]
    assert timestamp_of(m) == 0x010203040506


def test_a_truncated_capture_is_an_error() -> None:
    m = itch.encode(OrderDelete(1, 2, 3, 99))
    with pytest.raises(CaptureError):
        list(iter_messages(io.BytesIO(b"\x00\x13" + m + b"\x00\x13" + m[:5])))


def test_nasdaq_file_names_carry_the_trading_day() -> None:
    assert file_date("01302019.NASDAQ_ITCH50") == dt.date(2019, 1, 30)
    assert file_date("/data/itch/12302019.NASDAQ_ITCH50.gz") == dt.date(2019, 12, 30)
    assert file_date("07302019.PSX_ITCH_50.gz") == dt.date(2019, 7, 30)
    assert file_date("S013019-v50.txt.gz") == dt.date(2019, 1, 30)
    assert file_date(Path("S081321-v50.txt")) == dt.date(2021, 8, 13)
    for name in ("day.itch", "13302019.NASDAQ_ITCH50", "0130201.NASDAQ_ITCH50", "S133019-v50.txt.gz", "20190130.itch"):
        assert file_date(name) is None, name


def test_gzipped_and_plain_files_read_the_same(tmp_path: Path) -> None:
    messages = [itch.encode(OrderDelete(1, 2, t, 99)) for t in range(1, 2_000)]
    data = b"".join(len(m).to_bytes(2, "big") + m for m in messages)
    plain, packed = tmp_path / "day.itch", tmp_path / "01302019.NASDAQ_ITCH50.gz"
    plain.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    renamed = tmp_path / "day.bin"  # gzip is recognised by its bytes, not its name
    renamed.write_bytes(gzip.compress(data))
    for path in (plain, packed, renamed):
        with open_capture(path) as f:
            assert list(iter_messages(f, chunk=4_096)) == messages, path


def test_a_gzipped_file_is_read_as_a_stream(tmp_path: Path) -> None:
    m = itch.encode(OrderDelete(1, 2, 3, 99))
    path = tmp_path / "S013019-v50.txt.gz"
    path.write_bytes(gzip.compress((len(m).to_bytes(2, "big") + m) * 50_000))  # ~1.1 MB unpacked
    with open_capture(path) as f:
        first = next(iter_messages(f, chunk=1 << 12))
        assert first == m and f.tell() <= 1 << 13  # one chunk read so far, not the whole file
