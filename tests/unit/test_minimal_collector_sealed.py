"""The minimal collector's sealed session (written from docs/protocol.md §12) against the gateway's end.

The gateway's end here is the project's own `Responder` and `SealedChannel` (the code the
gateway runs), with fresh random keys: what the vectors check for one fixed session, these
check for the rules — both patterns on every transport's prologue, fragments both ways,
rekey by count and by time, and every refusal and failure the document names.
"""

from __future__ import annotations

import os

import pytest

from outpost.session.noise import CloseCause, RekeyPolicy, Responder, SealedChannel, SealedSessionError
from tests.conformance import minimal_collector as minimal
from tests.unit.session.noise_pair import KeyPair

KEY_ID = "ak_minimal"


class World:
    def __init__(self) -> None:
        self.collector, self.server = KeyPair.generate(), KeyPair.generate()
        self.psk = os.urandom(32)

    def access_key(self, *, pinned: bool = True, key_id: str = KEY_ID) -> minimal.AccessKey:
        return minimal.AccessKey(key_id, self.psk, self.server.public if pinned else None)

    def responder(self, transport: str = "tcp", **overrides: object) -> Responder:
        args: dict[str, object] = {
            "static_private": self.server.private,
            "transport": transport,
            "psk_for": {KEY_ID: self.psk}.get,
        }
        args.update(overrides)
        return Responder(**args)  # type: ignore[arg-type]

    def session(
        self, *, pinned: bool = True, transport: str = "tcp", policy: RekeyPolicy | None = None
    ) -> tuple[minimal.SealedRecords, SealedChannel]:
        """A completed handshake: the minimal collector's records and the gateway's channel."""
        initiator = minimal.SealedInitiator(self.access_key(pinned=pinned), self.collector.private, transport)
        responder = self.responder(transport)
        responder.read_message(initiator.message_1())
        initiator.read_reply(b"\x01" + responder.write_message(), minimal.agent_messages())
        if not responder.complete:
            responder.read_message(initiator.message_3())
        assert responder.remote_static == self.collector.public
        return initiator.channel(0.0), responder.channel(0.0, policy=policy)


@pytest.mark.parametrize("transport", ["tcp", "websocket", "poll", "grpc"])
@pytest.mark.parametrize("pinned", [True, False], ids=["ik", "xx"])
def test_the_minimal_collector_completes_both_patterns_with_the_gateways_end(pinned: bool, transport: str) -> None:
    collector, gateway = World().session(pinned=pinned, transport=transport)
    assert collector.handshake_hash == gateway.handshake_hash
    assert collector.server_confirmed is pinned
    [record] = collector.seal(b"hello", 0.0)
    assert gateway.open(record) == b"hello"
    assert gateway.peer_confirmed
    for record in gateway.seal(b"challenge", 0.0):
        assert collector.open(record) == b"challenge"
    assert collector.server_confirmed


def test_a_prologue_of_another_transport_fails_the_handshake() -> None:
    world = World()
    initiator = minimal.SealedInitiator(world.access_key(), world.collector.private, "tcp")
    with pytest.raises(SealedSessionError) as failed:
        world.responder("websocket").read_message(initiator.message_1())
    assert failed.value.cause is CloseCause.HANDSHAKE_FAILED


def test_large_envelopes_travel_as_more_fragments_both_ways() -> None:
    collector, gateway = World().session()
    envelope = os.urandom(3 * minimal.MAX_FRAGMENT_BYTES + 5)
    records = collector.seal(envelope, 1.0)
    assert [len(r) for r in records] == [minimal.MAX_RECORD_BYTES] * 3 + [5 + 17]
    assert [gateway.open(r) for r in records] == [None, None, None, envelope]
    back = gateway.seal(envelope, 1.0)
    assert [collector.open(r) for r in back] == [None, None, None, envelope]
    [empty] = collector.seal(b"", 2.0)
    assert gateway.open(empty) == b""


def test_rekey_by_count_stays_in_step_with_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minimal, "REKEY_EVERY_RECORDS", 3)
    collector, gateway = World().session(policy=RekeyPolicy(records=3))
    for n in range(10):
        [record] = collector.seal(b"up %d" % n, float(n))
        assert gateway.open(record) == b"up %d" % n
        for record in gateway.seal(b"down %d" % n, float(n)):
            assert collector.open(record) == b"down %d" % n
    assert gateway.rekeys_received == gateway.rekeys_sent == 3


def test_rekey_by_time_is_the_senders_flag() -> None:
    collector, gateway = World().session()
    [flagged] = collector.seal(b"at 600 s", minimal.REKEY_AFTER_SECONDS)
    assert gateway.open(flagged) == b"at 600 s"
    assert gateway.rekeys_received == 1
    [after] = collector.seal(b"under the new key", minimal.REKEY_AFTER_SECONDS + 1)
    assert gateway.open(after) == b"under the new key"
    for record in gateway.seal(b"the gateway's clock", 601.0):  # its own flag, its own direction
        assert collector.open(record) == b"the gateway's clock"
    [record] = gateway.seal(b"next", 602.0)
    assert collector.open(record) == b"next"


def test_an_altered_replayed_or_reordered_record_ends_the_session() -> None:
    collector, gateway = World().session()
    first, second = (r for e in (b"one", b"two") for r in gateway.seal(e, 0.0))
    altered = bytearray(first)
    altered[3] ^= 0x01
    with pytest.raises(minimal.SessionBroken):
        collector.open(bytes(altered))
    collector2, gateway2 = World().session()
    first, second = (r for e in (b"one", b"two") for r in gateway2.seal(e, 0.0))
    with pytest.raises(minimal.SessionBroken):
        collector2.open(second)  # reordered: record 1 under nonce 0
    collector3, gateway3 = World().session()
    [first] = gateway3.seal(b"one", 0.0)
    assert collector3.open(first) == b"one"
    with pytest.raises(minimal.SessionBroken):
        collector3.open(first)  # replayed: record 0 under nonce 1
    [forged] = collector.seal(b"x", 0.0)
    with pytest.raises(SealedSessionError) as failed:
        gateway.open(forged[:-1] + bytes([forged[-1] ^ 1]))
    assert failed.value.cause is CloseCause.HANDSHAKE_FAILED  # the gateway's first record: no key confirmation


def test_an_unknown_access_key_id_is_refused_by_the_gateway() -> None:
    world = World()
    initiator = minimal.SealedInitiator(world.access_key(key_id="ak_unknown"), world.collector.private, "tcp")
    with pytest.raises(SealedSessionError) as failed:
        world.responder().read_message(initiator.message_1())
    assert failed.value.cause is CloseCause.UNKNOWN_ACCESS_KEY


def test_another_access_key_secret_fails_at_the_first_record_or_message_3() -> None:
    world = World()
    wrong = minimal.AccessKey(KEY_ID, os.urandom(32), world.server.public)
    initiator = minimal.SealedInitiator(wrong, world.collector.private, "tcp")
    responder = world.responder()
    responder.read_message(initiator.message_1())  # IK psk2: the PSK is mixed in at message 2
    with pytest.raises(minimal.ServerNotProven):
        initiator.read_reply(b"\x01" + responder.write_message(), minimal.agent_messages())
    xx = minimal.SealedInitiator(minimal.AccessKey(KEY_ID, os.urandom(32), None), world.collector.private, "tcp")
    responder = world.responder()
    responder.read_message(xx.message_1())
    xx.read_reply(b"\x01" + responder.write_message(), minimal.agent_messages())
    with pytest.raises(SealedSessionError) as failed:
        responder.read_message(xx.message_3())
    assert failed.value.cause is CloseCause.HANDSHAKE_FAILED


def test_a_gateway_with_another_static_key_cannot_answer_a_pinned_collector() -> None:
    world, impostor = World(), World()
    initiator = minimal.SealedInitiator(world.access_key(), world.collector.private, "tcp")
    first = initiator.message_1()
    with pytest.raises(SealedSessionError):  # it cannot even read message 1 (made for the pinned key)
        impostor.responder(psk_for={KEY_ID: world.psk}.get).read_message(first)
    # Whatever it sends instead, the collector refuses: an XX-style message 2 under its own key.
    bogus = minimal.SealedInitiator(world.access_key(pinned=False), world.collector.private, "tcp")
    responder = impostor.responder(psk_for={KEY_ID: world.psk}.get)
    responder.read_message(bogus.message_1())
    with pytest.raises(minimal.ServerNotProven):
        initiator.read_reply(b"\x01" + responder.write_message(), minimal.agent_messages())


def test_first_contact_refused_when_the_gateway_admits_only_pinned_collectors() -> None:
    world = World()
    initiator = minimal.SealedInitiator(world.access_key(pinned=False), world.collector.private, "tcp")
    with pytest.raises(SealedSessionError) as failed:
        world.responder(allow_first_contact=False).read_message(initiator.message_1())
    assert failed.value.cause is CloseCause.FIRST_CONTACT_REFUSED


def test_a_refusal_is_read_as_advice_with_its_reason() -> None:
    pb = minimal.agent_messages()
    world = World()
    initiator = minimal.SealedInitiator(world.access_key(), world.collector.private, "tcp")
    initiator.message_1()
    refusal = pb.Disconnect(reason=18, message="no valid access key", retry=True)
    with pytest.raises(minimal.Refused) as refused:
        initiator.read_reply(b"\x00" + refusal.SerializeToString(), pb)
    assert refused.value.disconnect.reason == 18
    with pytest.raises(minimal.ServerNotProven):
        initiator.read_reply(b"\x07", pb)


def test_the_access_key_text_form_is_parsed_as_the_document_says() -> None:
    key = minimal.AccessKey.parse("outpost-ak1.ak_1." + "A" * 43 + "\n")
    assert key == minimal.AccessKey("ak_1", bytes(32), None)
    for bad in ("outpost-ak2.ak_1." + "A" * 43, "outpost-ak1.ak_1." + "A" * 42, "outpost-ak1.ak_1"):
        with pytest.raises(ValueError):
            minimal.AccessKey.parse(bad)
