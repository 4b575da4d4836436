"""The sealed session as frames: the collector's `InitiatorEnd` against the gateway's `GatewaySeal`.

No sockets: frames are handed across by hand, as a transport would carry them. The typed
handshake replies, the access-key gate, the zone rule, pinning only after key
confirmation, the channel binding and failure of altered, replayed and reordered records.
"""

from __future__ import annotations

import pytest

from outpost.access_key import AccessKeyGrant
from outpost.agent.v1 import agent_pb2
from outpost.session.errors import RemoteProtocolError
from outpost.session.noise import CloseCause, SealedSessionError
from outpost.session.noise.handshake import Pattern
from outpost.session.noise.wire import REPLY_HANDSHAKE, REPLY_REFUSAL, HandshakeRefused, InitiatorEnd
from services.gateway.sessions.sealed import AccessRefused, GatewaySeal, Phase, SealingPolicy
from tests.unit.session.noise_pair import ACCESS_KEY_ID, KeyPair, World

R = agent_pb2.DisconnectReason
NOW = 1000.0


def grants(world: World, zone: str | None = None) -> dict[str, AccessKeyGrant]:
    return {
        key_id: AccessKeyGrant(key_id=key_id, name=f"key {key_id}", psk=psk, zone=zone)
        for key_id, psk in world.access_keys.items()
    }


def gateway(
    world: World, *, zone: str | None = None, first_contact: bool = True, transport: str = "tcp"
) -> GatewaySeal:
    table = grants(world, zone)
    return GatewaySeal(
        static_private=world.server.private,
        transport=transport,
        grants=table.get,
        policy=SealingPolicy(allow_first_contact=first_contact),
    )


def collector(
    world: World, *, pinned: bool = True, key_id: str = ACCESS_KEY_ID, transport: str = "tcp"
) -> InitiatorEnd:
    return InitiatorEnd(
        static_private=world.collector.private,
        access_key_id=key_id,
        psk=world.psk,
        transport=transport,
        server_static=world.server.public if pinned else None,
    )


def hello_envelope(zone: str = "lab") -> bytes:
    hello = agent_pb2.Hello(name="c1", zone=zone, instance_uid="uid-1", protocol_version=1)
    return agent_pb2.CollectorMessage(sequence=1, hello=hello).SerializeToString()


def handshake(end: InitiatorEnd, seal: GatewaySeal) -> None:
    """Run the handshake to the end, as a transport would."""
    received = seal.receive(end.first_frame(), NOW)
    assert len(received.replies) == 1 and received.envelope is None
    for frame in end.read_reply(received.replies[0], NOW):
        assert seal.receive(frame, NOW).envelope is None


def refusal(frame: bytes) -> agent_pb2.Disconnect:
    assert frame[0] == REPLY_REFUSAL
    return agent_pb2.Disconnect.FromString(frame[1:])


@pytest.mark.parametrize("pinned", [True, False], ids=["IK", "XX"])
def test_a_sealed_session_carries_the_hello_and_binds_the_proof_to_the_handshake(pinned: bool) -> None:
    world = World()
    end, seal = collector(world, pinned=pinned), gateway(world)
    first = end.first_frame()
    assert first[0] == (Pattern.IK if pinned else Pattern.XX)
    reply = seal.receive(first, NOW).replies[0]
    assert reply[0] == REPLY_HANDSHAKE
    for frame in end.read_reply(reply, NOW):
        seal.receive(frame, NOW)
    # Key confirmation (ADR 0019): IK's gateway has it only at the first record, XX's at message 3.
    assert (seal.binding is None) == pinned
    records = end.seal(hello_envelope(), NOW)
    assert b"c1" not in b"".join(records)
    opened = [seal.receive(r, NOW).envelope for r in records]
    assert opened[-1] == hello_envelope()
    binding = seal.binding
    assert binding is not None and binding.access_key_id == ACCESS_KEY_ID
    assert binding.handshake_hash == end.handshake_hash and len(binding.handshake_hash) == 32
    answer = agent_pb2.ServerMessage(sequence=1, challenge=agent_pb2.Challenge(nonce=b"n" * 32))
    frames = seal.outgoing(answer.SerializeToString(), NOW)
    assert [end.open(f) for f in frames] == [answer.SerializeToString()]


def test_first_contact_pins_the_server_key_only_after_the_servers_first_record() -> None:
    world = World()
    end, seal = collector(world, pinned=False), gateway(world)
    handshake(end, seal)
    assert end.pin_candidate is None  # message 2 could have come from anyone
    for record in end.seal(hello_envelope(), NOW):
        seal.receive(record, NOW)
    ack = agent_pb2.ServerMessage(sequence=1).SerializeToString()
    for frame in seal.outgoing(ack, NOW):
        end.open(frame)
    assert end.pin_candidate == world.server.public


def test_a_pinned_collector_never_offers_a_pin() -> None:
    world = World()
    end, seal = collector(world), gateway(world)
    handshake(end, seal)
    for frame in seal.outgoing(agent_pb2.ServerMessage(sequence=1).SerializeToString(), NOW):
        end.open(frame)
    assert end.pin_candidate is None and end.server_key == world.server.public


@pytest.mark.parametrize("pinned", [True, False], ids=["IK", "XX"])
def test_an_unknown_access_key_is_refused_with_a_typed_reply_the_collector_reads_as_advice(pinned: bool) -> None:
    world = World()
    end, seal = collector(world, pinned=pinned, key_id="ak_unknown"), gateway(world)
    with pytest.raises(SealedSessionError) as refused:
        seal.receive(end.first_frame(), NOW)
    assert refused.value.cause is CloseCause.UNKNOWN_ACCESS_KEY
    assert refused.value.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
    assert seal.binding is None and seal.in_handshake
    # The session core's Disconnect goes out as a typed refusal: there are no keys yet.
    disconnect = agent_pb2.Disconnect(reason=refused.value.reason, message=refused.value.message, retry=True)
    [frame] = seal.outgoing(agent_pb2.ServerMessage(sequence=1, disconnect=disconnect).SerializeToString(), NOW)
    assert refusal(frame).reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
    with pytest.raises(HandshakeRefused) as advice:
        end.read_reply(frame, NOW)
    assert advice.value.disconnect.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
    assert "ak_unknown" in advice.value.disconnect.message


def test_first_contact_can_be_refused_while_pinned_collectors_are_admitted() -> None:
    world = World()
    with pytest.raises(SealedSessionError) as refused:
        gateway(world, first_contact=False).receive(collector(world, pinned=False).first_frame(), NOW)
    assert refused.value.cause is CloseCause.FIRST_CONTACT_REFUSED
    assert refused.value.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
    seal = gateway(world, first_contact=False)
    handshake(collector(world), seal)
    assert seal.phase is Phase.OPEN


def test_a_zone_bound_access_key_admits_only_a_hello_in_its_zone() -> None:
    world = World()
    end, seal = collector(world), gateway(world, zone="dmz")
    handshake(end, seal)
    with pytest.raises(AccessRefused) as refused:
        for record in end.seal(hello_envelope(zone="lab"), NOW):
            seal.receive(record, NOW)
    assert refused.value.reason == R.DISCONNECT_REASON_ACCESS_KEY_REFUSED
    assert "'dmz'" in refused.value.message and "'lab'" in refused.value.message
    end, seal = collector(world), gateway(world, zone="dmz")
    handshake(end, seal)
    assert [seal.receive(r, NOW).envelope for r in end.seal(hello_envelope(zone="dmz"), NOW)] == [
        hello_envelope(zone="dmz")
    ]


def test_a_legacy_cleartext_hello_is_refused_in_cleartext() -> None:
    seal = gateway(World())
    with pytest.raises(AccessRefused) as refused:
        seal.receive(hello_envelope(), NOW)
    assert refused.value.label == "unsealed"
    goodbye = agent_pb2.ServerMessage(
        sequence=1, disconnect=agent_pb2.Disconnect(reason=refused.value.reason, message=refused.value.message)
    ).SerializeToString()
    assert seal.outgoing(goodbye, NOW) == [goodbye]


def test_a_gateway_with_another_static_key_cannot_answer_a_pinned_collector() -> None:
    world = World()
    impostor = World(collector=world.collector, server=KeyPair.generate(), psk=world.psk)
    end = collector(world)
    with pytest.raises(SealedSessionError) as refused:
        gateway(impostor).receive(end.first_frame(), NOW)
    assert refused.value.cause is CloseCause.HANDSHAKE_FAILED
    assert refused.value.reason == R.DISCONNECT_REASON_AUTHENTICATION_FAILED


def test_a_forged_reply_fails_the_pinned_collectors_handshake_with_the_pinned_fingerprint() -> None:
    world = World()
    impostor = World(collector=world.collector, server=KeyPair.generate(), psk=world.psk)
    # The impostor answers an XX first frame of its own making: it cannot produce message 2 of IK.
    forged_reply = gateway(impostor).receive(collector(impostor, pinned=True).first_frame(), NOW).replies[0]
    end = collector(world)
    end.first_frame()
    with pytest.raises(SealedSessionError) as failed:
        end.read_reply(forged_reply, NOW)
    assert failed.value.cause is CloseCause.HANDSHAKE_FAILED
    assert "pinned key SHA256:" in failed.value.message


@pytest.mark.parametrize("attack", ["flip", "replay", "reorder"])
def test_an_altered_replayed_or_reordered_record_fails_the_session(attack: str) -> None:
    world = World()
    end, seal = collector(world), gateway(world)
    handshake(end, seal)
    records = [r for n in range(3) for r in end.seal(hello_envelope() + bytes([n]), NOW)]
    seal.receive(records[0], NOW)
    if attack == "flip":
        tampered = bytearray(records[1])
        tampered[5] ^= 0x01
        feed = [bytes(tampered)]
    elif attack == "replay":
        feed = [records[0]]
    else:
        feed = [records[2]]
    with pytest.raises(SealedSessionError) as failed:
        for record in feed:
            seal.receive(record, NOW)
    assert failed.value.cause is CloseCause.RECORD_AUTHENTICATION_FAILED
    assert not seal.in_handshake  # counted as a failed record, not a refused handshake
    # The failed channel can still seal the Disconnect, and the collector can open it.
    goodbye = agent_pb2.ServerMessage(sequence=2, disconnect=agent_pb2.Disconnect(reason=failed.value.reason))
    assert [end.open(f) for f in seal.outgoing(goodbye.SerializeToString(), NOW)] == [goodbye.SerializeToString()]


def test_the_transport_is_bound_into_the_handshake() -> None:
    world = World()
    end = collector(world, transport="poll")
    with pytest.raises(SealedSessionError) as failed:
        gateway(world, transport="tcp").receive(end.first_frame(), NOW)
    assert failed.value.cause is CloseCause.HANDSHAKE_FAILED
    handshake(collector(world, transport="poll"), gateway(world, transport="http_poll"))


def test_a_reply_that_is_neither_handshake_nor_refusal_is_malformed() -> None:
    end = collector(World())
    end.first_frame()
    with pytest.raises(SealedSessionError) as failed:
        end.read_reply(b"\x07garbage", NOW)
    assert failed.value.cause is CloseCause.MALFORMED_HANDSHAKE
    with pytest.raises(RemoteProtocolError):
        collector(World()).read_reply(b"\x00" + b"\xff" * 10, NOW)
