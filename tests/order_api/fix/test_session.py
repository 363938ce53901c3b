"""The sans-I/O FIX session: logon, sequence numbers, heartbeats, TestRequest, dead peer, logout.

Two sessions talk through plain byte strings; time is a number the test moves forward.
"""

from __future__ import annotations

import pytest

from order_api.fix import FixMessage, FixParser, NewOrder, checksum, decode, encode
from order_api.fix.session import (
    Closed,
    FixSession,
    FixSessionError,
    LoggedOn,
    Received,
    RejectReceived,
    Role,
    SessionState,
)

T0 = 1704164645.678  # 2024-01-02 03:04:05.678 UTC
HB = 30


def clock() -> float:
    return T0


def pair(hb: int = HB) -> tuple[FixSession, FixSession]:
    init = FixSession(Role.INITIATOR, "TICKFAN", "MM1", heartbeat_interval=hb, clock=clock)
    acc = FixSession(Role.ACCEPTOR, "MM1", clock=clock)
    return init, acc


def messages(data: bytes) -> list[FixMessage]:
    out = FixParser().feed(data)
    assert all(isinstance(m, FixMessage) for m in out)
    return out  # type: ignore[return-value]


def logged_on(hb: int = HB) -> tuple[FixSession, FixSession]:
    init, acc = pair(hb)
    init.start(0.0)
    acc.start(0.0)
    assert acc.receive_data(init.data_to_send(), 0.0) == [LoggedOn("TICKFAN", hb)]
    assert init.receive_data(acc.data_to_send(), 0.0) == [LoggedOn("MM1", hb)]
    return init, acc


def raw(session_from: str, to: str, seq: int, msg_type: str, *fields: tuple[int, str], poss_dup: bool = False) -> bytes:
    hdr = [(35, msg_type), (49, session_from), (56, to), (34, str(seq))]
    if poss_dup:
        hdr.append((43, "Y"))
    return encode(FixMessage([*hdr, (52, "20240102-03:04:05.678"), *fields]))


def test_logon_is_byte_exact() -> None:
    init, _ = pair()
    init.start(0.0)
    # body 5 + 11 + 7 + 5 + 25 + 5 + 7 + 6 = 71 bytes; CheckSum 242 (computed by hand-independent summing)
    assert init.data_to_send() == (b"8=FIX.4.4\x019=71\x0135=A\x0149=TICKFAN\x0156=MM1\x0134=1\x01"
                                   b"52=20240102-03:04:05.678\x0198=0\x01108=30\x01141=Y\x0110=242\x01")
    assert init.state is SessionState.LOGON_SENT


def test_logon_handshake_resets_sequence_numbers() -> None:
    init, acc = logged_on()
    assert init.state is acc.state is SessionState.ACTIVE
    assert (init.next_out_seq, init.next_in_seq, acc.next_out_seq, acc.next_in_seq) == (2, 2, 2, 2)
    assert acc.target_comp_id == "TICKFAN"


def test_acceptor_adopts_the_initiators_heartbeat() -> None:
    init, acc = logged_on(hb=5)
    assert acc.heartbeat_interval == 5


def test_application_messages_flow_in_sequence() -> None:
    init, acc = logged_on()
    order = NewOrder("C1", "AAPL", "buy", 10)
    init.send(order.to_fix(transact_time=0), 1.0)
    init.send(order.to_fix(transact_time=0), 1.0)
    (e1, e2) = acc.receive_data(init.data_to_send(), 1.0)
    assert isinstance(e1, Received) and isinstance(e2, Received)
    assert (e1.message[34], e2.message[34]) == ("2", "3")
    assert NewOrder.from_fix(e1.message) == order
    assert e1.message[49] == "TICKFAN" and e1.message[56] == "MM1"


def test_poss_resend_goes_in_the_header() -> None:
    init, acc = logged_on()
    acc.send(FixMessage([(35, "8"), (97, "Y"), (37, "O1")]), 1.0)
    (m,) = messages(acc.data_to_send())
    assert [t for t, _ in m.fields] == [35, 49, 56, 34, 97, 52, 37]


def test_illegal_calls_raise() -> None:
    init, acc = pair()
    with pytest.raises(FixSessionError):
        init.send(FixMessage([(35, "D")]), 0.0)  # not logged on
    with pytest.raises(FixSessionError):
        init.receive_data(b"", 0.0)  # not started
    init.start(0.0)
    with pytest.raises(FixSessionError):
        init.start(0.0)
    init, acc = logged_on()
    with pytest.raises(FixSessionError):
        init.send(FixMessage([(35, "A")]), 0.0)  # session messages are the session's
    with pytest.raises(FixSessionError):
        init.send(FixMessage([(35, "D"), (34, "9")]), 0.0)
    init.connection_lost(0.0)
    with pytest.raises(FixSessionError):
        init.receive_data(b"x", 0.0)
    with pytest.raises(FixSessionError):
        init.logout("again", 0.0)


def test_first_message_must_be_a_logon() -> None:
    _, acc = pair()
    acc.start(0.0)
    (ev,) = acc.receive_data(raw("TICKFAN", "MM1", 1, "0"), 0.0)
    assert isinstance(ev, Closed) and "expected Logon" in ev.reason and not ev.by_peer
    (out,) = messages(acc.data_to_send())
    assert out.msg_type == "5" and "expected Logon" in (out.get(58) or "")


def test_logon_without_reset_is_refused() -> None:
    _, acc = pair()
    acc.start(0.0)
    (ev,) = acc.receive_data(raw("TICKFAN", "MM1", 1, "A", (98, "0"), (108, "30")), 0.0)
    assert isinstance(ev, Closed) and "141=Y" in ev.reason


def test_wrong_target_comp_id_is_refused() -> None:
    _, acc = pair()
    acc.start(0.0)
    (ev,) = acc.receive_data(raw("TICKFAN", "MM2", 1, "A", (98, "0"), (108, "30"), (141, "Y")), 0.0)
    assert isinstance(ev, Closed) and "CompID" in ev.reason


def test_initiator_sees_a_refused_logon() -> None:
    init, _ = pair()
    init.start(0.0)
    init.data_to_send()
    (ev,) = init.receive_data(raw("MM1", "TICKFAN", 1, "5", (58, "go away")), 0.0)
    assert ev == Closed("logon refused: go away", by_peer=True)


def test_logon_timeout() -> None:
    init, acc = pair()
    init.start(0.0)
    acc.start(0.0)
    assert init.next_deadline() == 10.0
    assert init.tick(9.9) == [] and acc.tick(9.9) == []
    (ev,) = init.tick(10.0)
    assert isinstance(ev, Closed) and "no Logon" in ev.reason
    (ev,) = acc.tick(10.0)
    assert isinstance(ev, Closed)


def test_heartbeat_after_an_interval_without_sending() -> None:
    init, acc = logged_on()
    assert init.next_deadline() == HB
    assert init.tick(HB - 0.1) == [] and init.data_to_send() == b""
    assert init.tick(HB) == []
    (hb,) = messages(init.data_to_send())
    assert hb.msg_type == "0" and hb[34] == "2"
    assert acc.receive_data(b"".join([encode(FixMessage(hb.fields))]), HB) == []
    assert acc.next_in_seq == 3


def test_test_request_answered_keeps_the_session() -> None:
    init, acc = logged_on()
    # the acceptor hears nothing for 1.2 intervals (it sends its own heartbeats meanwhile)
    acc.tick(HB)
    init.receive_data(acc.data_to_send(), HB)
    assert acc.tick(HB * 1.2) == []
    (tr,) = messages(acc.data_to_send())
    assert tr.msg_type == "1" and tr[112] == "TEST-1"
    assert init.receive_data(encode(FixMessage(tr.fields)), HB * 1.2) == []
    (answer,) = messages(init.data_to_send())
    assert answer.msg_type == "0" and answer[112] == "TEST-1"
    assert acc.receive_data(encode(FixMessage(answer.fields)), HB * 1.3) == []
    assert acc.tick(HB * 2.2) == [] and acc.state is SessionState.ACTIVE


def test_unanswered_test_request_means_a_dead_peer() -> None:
    init, acc = logged_on()
    init.muted = True  # the "slow" fault: no heartbeats, no answers
    assert acc.tick(HB * 1.2) == []
    (tr,) = messages(acc.data_to_send())
    assert tr.msg_type == "1"
    init.receive_data(encode(FixMessage(tr.fields)), HB * 1.2)
    assert init.data_to_send() == b""  # muted: no answer
    assert acc.next_deadline() == pytest.approx(HB * 2.2)
    assert acc.tick(HB * 2.2 - 0.01) == []
    (ev,) = acc.tick(HB * 2.2)
    assert isinstance(ev, Closed) and "peer dead" in ev.reason and not ev.by_peer
    (lo,) = messages(acc.data_to_send())
    assert lo.msg_type == "5"
    assert acc.tick(HB * 10) == [] and acc.next_deadline() is None


def test_sequence_gap_logs_out_with_a_reason() -> None:
    init, acc = logged_on()
    (ev,) = acc.receive_data(raw("TICKFAN", "MM1", 5, "0"), 1.0)
    assert isinstance(ev, Closed) and ev.reason == "MsgSeqNum too high, expected 2 received 5"
    (lo,) = messages(acc.data_to_send())
    assert lo.msg_type == "5" and lo[58] == "MsgSeqNum too high, expected 2 received 5"
    assert acc.state is SessionState.CLOSED


def test_too_low_sequence_without_poss_dup_logs_out() -> None:
    init, acc = logged_on()
    acc.receive_data(raw("TICKFAN", "MM1", 2, "0"), 1.0)
    (ev,) = acc.receive_data(raw("TICKFAN", "MM1", 2, "0"), 1.0)
    assert isinstance(ev, Closed) and "too low" in ev.reason


def test_too_low_sequence_with_poss_dup_is_ignored() -> None:
    init, acc = logged_on()
    acc.receive_data(raw("TICKFAN", "MM1", 2, "D", (11, "x")), 1.0)
    assert acc.receive_data(raw("TICKFAN", "MM1", 2, "D", (11, "x"), poss_dup=True), 1.0) == []
    assert acc.counters["duplicates_ignored"] == 1 and acc.state is SessionState.ACTIVE


def test_garbled_message_logs_out() -> None:
    init, acc = logged_on()
    good = raw("TICKFAN", "MM1", 2, "0")
    bad = good[:-4] + b"%03d\x01" % ((int(good[-4:-1]) + 1) % 256)
    (ev,) = acc.receive_data(bad, 1.0)
    assert isinstance(ev, Closed) and "checksum" in ev.reason
    assert acc.counters["garbled"] == 1


def test_bad_field_is_rejected_and_the_session_goes_on() -> None:
    init, acc = logged_on()
    body = b"35=D\x0149=TICKFAN\x0156=MM1\x0134=2\x0152=20240102-03:04:05.678\x01abc=1\x01"
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    assert acc.receive_data(head + body + b"10=%03d\x01" % checksum(head + body), 1.0) == []
    (rej,) = messages(acc.data_to_send())
    assert rej.msg_type == "3" and rej[45] == "2" and rej[373] == "6"
    (ev,) = acc.receive_data(raw("TICKFAN", "MM1", 3, "D", (11, "x")), 1.0)
    assert isinstance(ev, Received)
    # and the initiator sees the Reject as an event
    (ev2,) = init.receive_data(encode(FixMessage(rej.fields)), 1.0)
    assert isinstance(ev2, RejectReceived) and ev2.reject.ref_seq_num == 2


def test_application_reject() -> None:
    init, acc = logged_on()
    acc.reject(2, 1, "required tag 55 missing", 1.0, ref_tag=55, ref_msg_type="D")  # type: ignore[arg-type]
    (rej,) = messages(acc.data_to_send())
    assert (rej[45], rej[371], rej[372], rej[373]) == ("2", "55", "D", "1")


def test_peer_logout_is_answered() -> None:
    init, acc = logged_on()
    (ev,) = acc.receive_data(raw("TICKFAN", "MM1", 2, "5", (58, "bye")), 1.0)
    assert ev == Closed("peer logged out: bye", by_peer=True)
    (lo,) = messages(acc.data_to_send())
    assert lo.msg_type == "5"


def test_our_logout_waits_for_the_answer() -> None:
    init, acc = logged_on()
    assert init.logout("done for today", 1.0) == []
    assert init.state is SessionState.LOGOUT_SENT
    assert init.logout("twice", 1.0) == []  # idempotent while waiting
    (ev,) = acc.receive_data(init.data_to_send(), 1.0)
    assert ev == Closed("peer logged out: done for today", by_peer=True)
    (ev,) = init.receive_data(acc.data_to_send(), 1.0)
    assert ev == Closed("done for today", by_peer=False)


def test_messages_still_arrive_while_logging_out() -> None:
    init, acc = logged_on()
    init.logout("bye", 1.0)
    acc.send(FixMessage([(35, "8"), (37, "O1")]), 1.0)
    (ev,) = init.receive_data(acc.data_to_send(), 1.0)
    assert isinstance(ev, Received)


def test_logout_timeout() -> None:
    init, _ = logged_on()
    init.logout("bye", 1.0)
    assert init.next_deadline() == 3.0
    (ev,) = init.tick(3.0)
    assert ev == Closed("bye", by_peer=False)


def test_connection_lost() -> None:
    init, _ = logged_on()
    assert init.connection_lost(1.0) == [Closed("connection lost", by_peer=True)]
    assert init.connection_lost(1.0) == []


def test_resend_request_is_not_supported() -> None:
    init, acc = logged_on()
    (ev,) = acc.receive_data(raw("TICKFAN", "MM1", 2, "2", (7, "1"), (16, "0")), 1.0)
    assert isinstance(ev, Closed) and "reconcile" in ev.reason


def test_stops_after_close_within_one_read() -> None:
    init, acc = logged_on()
    data = raw("TICKFAN", "MM1", 9, "0") + raw("TICKFAN", "MM1", 2, "D", (11, "x"))
    events = acc.receive_data(data, 1.0)
    assert len(events) == 1 and isinstance(events[0], Closed)


def test_decode_helper_accepts_session_output() -> None:
    init, _ = pair()
    init.start(0.0)
    assert decode(init.data_to_send()).msg_type == "A"
