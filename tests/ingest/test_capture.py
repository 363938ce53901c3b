"""Capture files: plain length-prefixed ITCH 5.0, read back in chunks; a truncated one is an error."""

from __future__ import annotations

import io

import pytest

from ingest import itch
from ingest.capture import CaptureError, CaptureWriter, iter_messages, timestamp_of
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
