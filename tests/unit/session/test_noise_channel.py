"""The sealed record layer: every envelope arrives once, in order, unaltered, or the session ends.

Counter nonces are implicit, so a replayed, reordered, altered or truncated record fails
its tag and raises `SealedSessionError` with a cause; rekeys (by count and by the time
flag) keep both directions in step.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outpost.agent.v1 import agent_pb2
from outpost.session.codec import FrameDecoder, decode_collector_message, encode_frame
from outpost.session.errors import LocalProtocolError
from outpost.session.noise import CloseCause, RekeyPolicy, SealedChannel, SealedSessionError
from outpost.session.noise.channel import FLAG_MORE, FLAG_REKEY, MAX_FRAGMENT_BYTES, MAX_RECORD_BYTES
from tests.unit.session.noise_pair import World, channels

R = agent_pb2.DisconnectReason


def confirmed_pair(**kwargs) -> tuple[SealedChannel, SealedChannel]:
    """(collector, gateway) after one record each way, so both have key confirmation."""
    collector, gateway = channels(World(), **kwargs)
    assert gateway.open(collector.seal(b"hello", now=0.0)[0]) == b"hello"
    assert collector.open(gateway.seal(b"welcome", now=0.0)[0]) == b"welcome"
    return collector, gateway


def deliver(sender: SealedChannel, receiver: SealedChannel, envelope: bytes, now: float = 0.0) -> bytes | None:
    out = None
    for record in sender.seal(envelope, now=now):
        out = receiver.open(record)
    return out


@pytest.mark.parametrize(
    "size", [0, 1, 200, MAX_FRAGMENT_BYTES, MAX_FRAGMENT_BYTES + 1, 3 * MAX_FRAGMENT_BYTES + 7, 1024 * 1024]
)
def test_envelopes_of_any_size_up_to_the_bound_arrive_whole_in_both_directions(size):
    collector, gateway = confirmed_pair()
    envelope = bytes(range(256)) * (size // 256) + bytes(size % 256)
    records = collector.seal(envelope, now=0.0)
    assert len(records) == max(1, -(-size // MAX_FRAGMENT_BYTES))
    assert all(len(record) <= MAX_RECORD_BYTES for record in records)
    assert [gateway.open(record) for record in records][-1] == envelope
    assert deliver(gateway, collector, envelope) == envelope
    assert gateway.incomplete_bytes == 0


def test_a_flipped_bit_closes_the_session_with_a_reason():
    collector, gateway = confirmed_pair()
    [record] = collector.seal(b"result batch", now=0.0)
    altered = bytearray(record)
    altered[3] ^= 0x10
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(bytes(altered))
    assert refused.value.cause is CloseCause.RECORD_AUTHENTICATION_FAILED
    assert refused.value.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    assert "record 1" in refused.value.message
    assert gateway.failed
    with pytest.raises(LocalProtocolError):
        gateway.open(record)  # a failed channel opens nothing, not even the genuine record
    assert collector.open(gateway.seal(b"disconnect", now=0.0)[0]) == b"disconnect"  # but it can still say why


def test_a_replayed_record_closes_the_session():
    collector, gateway = confirmed_pair()
    [record] = collector.seal(b"job update", now=0.0)
    assert gateway.open(record) == b"job update"
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(record)
    assert refused.value.cause is CloseCause.RECORD_AUTHENTICATION_FAILED


def test_a_reordered_record_closes_the_session():
    collector, gateway = confirmed_pair()
    collector.seal(b"first", now=0.0)
    [second] = collector.seal(b"second", now=0.0)
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(second)  # the second record before the first
    assert refused.value.cause is CloseCause.RECORD_AUTHENTICATION_FAILED


def test_a_dropped_record_closes_the_session_at_the_next_one():
    collector, gateway = confirmed_pair()
    collector.seal(b"lost on the way", now=0.0)
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(collector.seal(b"next", now=0.0)[0])
    assert refused.value.cause is CloseCause.RECORD_AUTHENTICATION_FAILED


@pytest.mark.parametrize("keep", [1, 10, 16, -1], ids=["to-1-byte", "to-10-bytes", "to-16-bytes", "last-byte-cut"])
def test_a_truncated_record_closes_the_session(keep):
    collector, gateway = confirmed_pair()
    [record] = collector.seal(b"heartbeat", now=0.0)
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(record[:keep])
    expected = CloseCause.RECORD_AUTHENTICATION_FAILED if keep == -1 else CloseCause.RECORD_TRUNCATED
    assert refused.value.cause is expected


def test_an_envelope_cut_short_leaves_its_fragments_counted_and_a_missing_middle_fragment_fails():
    collector, gateway = confirmed_pair()
    records = collector.seal(bytes(3 * MAX_FRAGMENT_BYTES), now=0.0)
    assert gateway.open(records[0]) is None
    assert gateway.incomplete_bytes == MAX_FRAGMENT_BYTES  # what a transport reports when the stream ends here
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(records[2])
    assert refused.value.cause is CloseCause.RECORD_AUTHENTICATION_FAILED


def test_a_record_from_another_session_is_refused():
    _, gateway = confirmed_pair()
    other_collector, _ = confirmed_pair()
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(other_collector.seal(b"same counter, other keys", now=0.0)[0])
    assert refused.value.cause is CloseCause.RECORD_AUTHENTICATION_FAILED


def test_an_oversized_record_is_refused_before_decryption():
    _, gateway = confirmed_pair()
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(bytes(MAX_RECORD_BYTES + 1))
    assert refused.value.cause is CloseCause.RECORD_TOO_LARGE
    assert refused.value.reason == R.DISCONNECT_REASON_FRAME_TOO_LARGE


def test_an_envelope_beyond_the_receivers_bound_is_refused_while_it_arrives():
    collector, gateway = channels(World())
    gateway.max_envelope_bytes = 2 * MAX_FRAGMENT_BYTES
    records = collector.seal(bytes(3 * MAX_FRAGMENT_BYTES), now=0.0)
    assert gateway.open(records[0]) is None
    assert gateway.open(records[1]) is None
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(records[2])
    assert refused.value.cause is CloseCause.ENVELOPE_TOO_LARGE
    with pytest.raises(LocalProtocolError):
        collector.seal(bytes(collector.max_envelope_bytes + 1), now=0.0)  # our own code never sends one


def test_undefined_flag_bits_in_an_authentic_record_are_refused():
    collector, gateway = confirmed_pair()
    forged = collector._send.encrypt(bytes([0x80]) + b"from a newer peer?")
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(forged)
    assert refused.value.cause is CloseCause.MALFORMED_RECORD


def test_the_same_envelope_never_seals_to_the_same_bytes():
    collector, _ = confirmed_pair()
    records = {collector.seal(b"heartbeat", now=0.0)[0] for _ in range(100)}
    assert len(records) == 100


def test_rekey_by_count_keeps_both_directions_working_across_the_bound():
    policy = RekeyPolicy(records=3, seconds=1e9)
    collector, gateway = confirmed_pair(policy=policy)  # 1 record each way so far
    for n in range(20):
        assert deliver(collector, gateway, b"up %d" % n) == b"up %d" % n
        assert deliver(gateway, collector, b"down %d" % n) == b"down %d" % n
    # 21 records each way, a rekey after every third, in both directions, on both ends
    assert collector.rekeys_sent == gateway.rekeys_received == 7
    assert gateway.rekeys_sent == collector.rekeys_received == 7


def test_a_receiver_out_of_step_with_the_rekey_count_fails_at_once():
    world = World()
    collector, gateway = channels(world, policy=RekeyPolicy(records=2, seconds=1e9))
    gateway.policy = RekeyPolicy(records=1000, seconds=1e9)
    assert deliver(collector, gateway, b"one") == b"one"
    assert deliver(collector, gateway, b"two") == b"two"  # the collector rekeys after this one
    with pytest.raises(SealedSessionError):
        deliver(collector, gateway, b"three")  # sealed under the new key: the key really changed


def test_rekey_by_time_is_signalled_by_a_flag_and_only_the_senders_clock_matters():
    policy = RekeyPolicy(records=1_000_000, seconds=60.0)
    collector, gateway = channels(World(), policy=policy, now=1000.0)
    for now in (1000.0, 1030.0, 1059.9):
        assert deliver(collector, gateway, b"heartbeat", now=now) == b"heartbeat"
    assert gateway.rekeys_received == 0
    [flagged] = collector.seal(b"heartbeat", now=1060.0)
    assert collector.rekeys_sent == 1
    assert gateway.open(flagged) == b"heartbeat"
    assert gateway.rekeys_received == 1
    for now in (1061.0, 1119.0):
        assert deliver(collector, gateway, b"batch", now=now) == b"batch"
    assert gateway.rekeys_received == 1
    assert deliver(collector, gateway, b"batch", now=1120.0) == b"batch"
    assert collector.rekeys_sent == gateway.rekeys_received == 2
    assert gateway.rekeys_sent == 0  # each direction on its own sender's clock


def test_a_fragmented_envelope_sets_more_on_all_but_its_last_record_and_rekeys_after_the_last():
    collector, gateway = channels(World(), policy=RekeyPolicy(records=1_000_000, seconds=1.0))
    records = collector.seal(bytes(2 * MAX_FRAGMENT_BYTES + 1), now=5.0)
    flags = [gateway._receive.decrypt(r)[0] for r in records]  # peek: decrypt with the peer's keys
    assert flags == [FLAG_MORE, FLAG_MORE, FLAG_REKEY]


@settings(max_examples=60, deadline=None)
@given(
    envelope=st.binary(min_size=0, max_size=300),
    position=st.integers(min_value=0, max_value=10_000),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_single_bit_flip_anywhere_in_a_record_is_refused(envelope, position, bit):
    collector, gateway = confirmed_pair()
    [record] = collector.seal(envelope, now=0.0)
    altered = bytearray(record)
    altered[position % len(altered)] ^= 1 << bit
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(bytes(altered))
    assert refused.value.cause is CloseCause.RECORD_AUTHENTICATION_FAILED


def test_a_transport_feeds_tcp_bytes_in_any_chunking_and_gets_envelopes_or_a_reason_to_close():
    """What the TCP adapter of the next increment does: bytes -> frames -> records -> envelopes."""
    collector, gateway = confirmed_pair()
    sent = [
        agent_pb2.CollectorMessage(sequence=n, heartbeat=agent_pb2.Heartbeat()).SerializeToString() for n in range(5)
    ]
    sent.append(
        agent_pb2.CollectorMessage(
            sequence=5, result_batch=agent_pb2.ResultBatch(job_run_id="x" * 100_000)
        ).SerializeToString()
    )
    stream = b"".join(encode_frame(record) for envelope in sent for record in collector.seal(envelope, now=0.0))
    decoder = FrameDecoder(max_frame_bytes=MAX_RECORD_BYTES)
    received = []
    for start in range(0, len(stream), 777):
        for frame in decoder.feed(stream[start : start + 777]):
            envelope = gateway.open(frame)
            if envelope is not None:
                received.append(decode_collector_message(envelope))
    assert [m.sequence for m in received] == list(range(6))
    assert received[-1].result_batch.job_run_id == "x" * 100_000

    injected = encode_frame(b"\x00" * 40)  # a frame injected on the path
    with pytest.raises(SealedSessionError) as refused:
        for frame in decoder.feed(injected):
            gateway.open(frame)
    disconnect = agent_pb2.Disconnect(reason=refused.value.reason, message=refused.value.message)
    assert disconnect.reason == R.DISCONNECT_REASON_MALFORMED_FRAME
    assert collector.open(gateway.seal(disconnect.SerializeToString(), now=0.0)[0]) is not None


def test_a_direction_that_used_every_nonce_ends_the_session_rather_than_reuse_one():
    collector, gateway = confirmed_pair()
    collector._send._n = 2**64 - 1  # reserved by Noise for rekey
    with pytest.raises(SealedSessionError) as exhausted:
        collector.seal(b"one too many", now=0.0)
    assert exhausted.value.cause is CloseCause.NONCE_EXHAUSTED
    gateway._receive._n = 2**64 - 1
    with pytest.raises(SealedSessionError) as refused:
        gateway.open(bytes(40))
    assert refused.value.cause is CloseCause.NONCE_EXHAUSTED
