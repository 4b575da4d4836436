"""ServerSession once accepted: the registry's later decisions, deadlines, closing and
sequence numbers, asserting every envelope sent and every event at each step."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from outpost.agent.v1 import agent_pb2
from outpost.session.errors import LocalProtocolError
from outpost.session.server import (
    ACCEPTED_STATES,
    PROTO_BY_STATE,
    AuthDecision,
    HeartbeatReceived,
    SequenceGap,
    ServerState,
    SessionAccepted,
    SessionClosed,
    StateEntered,
)
from tests.unit.collector_identity import HELLO, SIGNATURE
from tests.unit.server_driver import (
    AUTH_REQUESTED,
    BODIES,
    COLLECTOR_BYE,
    HANDSHAKE_TIMEOUT,
    KINDS,
    LIVENESS,
    NOW,
    Body,
    Driven,
    R,
    S,
    accept,
    disconnect,
    drive_to,
    from_collector,
    message_of_kind,
    new_session,
    pending,
    state_change,
    unknown_kind,
    welcome,
)

# --- the registry's later decisions -----------------------------------------------------
STATE_CHANGES = [
    (S.PENDING, S.ENABLED, welcome(S.ENABLED, "registered by alice")),
    (S.PENDING, S.DISABLED, welcome(S.DISABLED, "registered by alice")),
    (S.ENABLED, S.DISABLED, state_change(S.DISABLED, "registered by alice", "alice")),
    (S.DISABLED, S.ENABLED, state_change(S.ENABLED, "registered by alice", "alice")),
    (S.ENABLED, S.PENDING, pending("registered by alice")),
    (S.DISABLED, S.PENDING, pending("registered by alice")),
]


@pytest.mark.parametrize(
    ("before", "after", "body"),
    STATE_CHANGES,
    ids=[f"{before.value}-to-{after.value}" for before, after, _ in STATE_CHANGES],
)
def test_admin_decision_reaches_the_live_session(before: ServerState, after: ServerState, body: Body) -> None:
    driven = drive_to(before)

    driven.session.state_changed(after, "registered by alice", "alice", revision=2)

    assert driven.session.state is after
    assert driven.session.revision == 2
    assert driven.session.data_to_send() == driven.sent(body)
    assert driven.session.events_received() == [StateEntered(after, "registered by alice")]


def test_pending_collector_registered_by_an_admin_gets_its_welcome_without_reconnecting() -> None:
    driven = drive_to(S.PENDING)

    driven.session.state_changed(S.ENABLED, "", "alice", revision=2)

    assert driven.session.state is S.ENABLED
    assert driven.session.data_to_send() == driven.sent(welcome(S.ENABLED))
    assert driven.session.events_received() == [StateEntered(S.ENABLED, "")]


@pytest.mark.parametrize("state", sorted(ACCEPTED_STATES, key=str))
def test_decision_for_the_current_state_records_the_revision_and_sends_nothing(
    state: ServerState,
) -> None:
    driven = drive_to(state)

    driven.session.state_changed(state, "no change", "alice", revision=5)

    assert driven.session.state is state
    assert driven.session.revision == 5
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == []


@pytest.mark.parametrize("revision", [0, 1])
def test_stale_decision_is_ignored(revision: int) -> None:
    driven = drive_to(S.ENABLED)  # accepted at revision 1

    driven.session.state_changed(S.DISABLED, "old news", "bob", revision=revision)
    driven.session.removed("old news", revision=revision)

    assert driven.session.state is S.ENABLED
    assert driven.session.revision == 1
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == []


def test_decision_older_than_the_last_one_applied_is_ignored() -> None:
    driven = drive_to(S.ENABLED)
    driven.session.state_changed(S.DISABLED, "maintenance", "alice", revision=4)
    driven.server_sequence += len(driven.session.data_to_send())
    driven.session.events_received()

    driven.session.state_changed(S.ENABLED, "delayed watch event", "bob", revision=3)

    assert driven.session.state is S.DISABLED
    assert driven.session.revision == 4
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == []


@pytest.mark.parametrize("state", [S.AUTHENTICATING, S.CLOSED])
def test_decision_to_a_state_that_is_not_a_collector_state_is_a_local_protocol_error(
    state: ServerState,
) -> None:
    driven = drive_to(S.ENABLED)

    with pytest.raises(LocalProtocolError):
        driven.session.state_changed(state, "", "alice", revision=2)

    assert driven.session.state is S.ENABLED
    assert driven.session.data_to_send() == []


@pytest.mark.parametrize("state", sorted(ACCEPTED_STATES, key=str))
def test_removed_collector_is_disconnected_and_told_not_to_retry(state: ServerState) -> None:
    driven = drive_to(state)

    driven.session.removed("removed by alice", revision=2)

    reason = R.DISCONNECT_REASON_REMOVED
    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent(
        {"disconnect": disconnect(reason, "removed by alice", retry=False)}
    )
    assert driven.session.events_received() == [SessionClosed(reason, "removed by alice", by_peer=False)]


def test_removal_without_a_reason_says_an_admin_removed_it() -> None:
    driven = drive_to(S.PENDING)

    driven.session.removed("", revision=2)

    [message] = driven.session.data_to_send()
    assert message.disconnect.message == "collector was removed by an admin"


def test_decision_during_the_handshake_is_not_sent_before_the_session_is_accepted() -> None:
    driven = drive_to(S.AUTHENTICATING)

    driven.session.state_changed(S.ENABLED, "registered by alice", "alice", revision=5)
    driven.session.removed("", revision=1)

    assert driven.session.state is S.AUTHENTICATING
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == []


def test_newer_decision_during_the_handshake_wins_over_the_registry_answer() -> None:
    driven = drive_to(S.AUTHENTICATING)
    driven.session.state_changed(S.ENABLED, "registered by alice", "alice", revision=5)

    driven.session.authenticated(accept(S.PENDING, revision=4), NOW)

    assert driven.session.state is S.ENABLED
    assert driven.session.revision == 5
    assert driven.session.data_to_send() == driven.sent(welcome(S.ENABLED, "registered by alice"))
    assert driven.session.events_received() == [
        SessionAccepted(HELLO.instance_uid, HELLO.name, S.ENABLED),
        StateEntered(S.ENABLED, "registered by alice"),
    ]


def test_older_decision_during_the_handshake_loses_to_the_registry_answer() -> None:
    driven = drive_to(S.AUTHENTICATING)
    driven.session.state_changed(S.ENABLED, "old", "alice", revision=3)

    driven.session.authenticated(accept(S.PENDING, revision=4), NOW)

    assert driven.session.state is S.PENDING
    assert driven.session.revision == 4
    assert driven.session.data_to_send() == driven.sent(pending())


def test_removal_during_the_handshake_closes_the_session_instead_of_accepting_it() -> None:
    driven = drive_to(S.AUTHENTICATING)
    driven.session.state_changed(S.ENABLED, "registered", "alice", revision=5)
    driven.session.removed("removed by bob", revision=6)

    driven.session.authenticated(accept(S.PENDING, revision=4), NOW)

    reason = R.DISCONNECT_REASON_REMOVED
    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent(
        {"disconnect": disconnect(reason, "removed by bob", retry=False)}
    )
    assert driven.session.events_received() == [SessionClosed(reason, "removed by bob", by_peer=False)]


def test_removal_older_than_the_registry_answer_is_ignored() -> None:
    driven = drive_to(S.AUTHENTICATING)
    driven.session.removed("removed long ago", revision=3)

    driven.session.authenticated(accept(S.DISABLED, revision=4), NOW)

    assert driven.session.state is S.DISABLED
    assert driven.session.data_to_send() == driven.sent(welcome(S.DISABLED))


# --- deadlines --------------------------------------------------------------------------
@pytest.mark.parametrize("state", [S.AWAIT_HELLO, S.AWAIT_PROOF, S.AUTHENTICATING])
def test_handshake_not_completed_in_time_is_closed_with_handshake_timeout(
    state: ServerState,
) -> None:
    driven = drive_to(state)
    driven.feed(now=NOW + 5, **BODIES["empty"])  # messages do not extend the handshake
    deadline = NOW + HANDSHAKE_TIMEOUT

    driven.session.tick(deadline - 0.001)
    assert driven.session.state is state
    assert driven.session.data_to_send() == []
    assert driven.session.next_deadline() == deadline

    driven.session.tick(deadline)

    reason = R.DISCONNECT_REASON_HANDSHAKE_TIMEOUT
    message = "handshake not completed within 10s"
    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(reason, message)})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]
    assert driven.session.next_deadline() is None


@pytest.mark.parametrize("state", sorted(ACCEPTED_STATES, key=str))
def test_collector_that_stops_heartbeating_is_closed_with_heartbeat_timeout(
    state: ServerState,
) -> None:
    driven = drive_to(state)
    driven.feed(now=NOW + 50, heartbeat=agent_pb2.Heartbeat())
    driven.server_sequence += len(driven.session.data_to_send())
    assert driven.session.events_received() == [HeartbeatReceived(agent_pb2.Heartbeat())]
    deadline = NOW + 50 + LIVENESS

    driven.session.tick(deadline - 0.001)
    assert driven.session.state is state
    assert driven.session.data_to_send() == []
    assert driven.session.next_deadline() == deadline

    driven.session.tick(deadline)

    reason = R.DISCONNECT_REASON_HEARTBEAT_TIMEOUT
    message = "no heartbeat from the collector"
    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(reason, message)})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]


def test_liveness_is_counted_from_acceptance_when_the_registry_was_slow() -> None:
    driven = drive_to(S.AUTHENTICATING)

    driven.session.authenticated(accept(S.ENABLED), NOW + 8)

    assert driven.session.next_deadline() == NOW + 8 + LIVENESS


def test_a_heartbeat_interval_sent_in_a_config_update_becomes_the_sessions_own() -> None:
    """A polling session told a new check interval (its heartbeat interval) expects
    messages at that pace from then on; a ConfigUpdate without one changes nothing."""
    driven = drive_to(S.ENABLED)

    assert driven.session.update_config(agent_pb2.ConfigUpdate(collector_check_minutes=2))
    assert driven.session.next_deadline() == NOW + LIVENESS
    assert driven.session.update_config(
        agent_pb2.ConfigUpdate(collector_check_minutes=5, heartbeat_interval_seconds=300)
    )

    assert driven.session.next_deadline() == NOW + 300 * 3
    sent = [m.config_update for m in driven.session.data_to_send()]
    assert [(c.collector_check_minutes, c.heartbeat_interval_seconds) for c in sent] == [(2, 0), (5, 300)]


def test_no_config_update_is_sent_before_the_session_is_accepted() -> None:
    driven = drive_to(S.AUTHENTICATING)
    assert not driven.session.update_config(agent_pb2.ConfigUpdate(heartbeat_interval_seconds=300))
    assert driven.session.data_to_send() == []


# --- closing ----------------------------------------------------------------------------
def test_shutdown_tells_the_collector_to_reconnect_to_another_gateway() -> None:
    driven = drive_to(S.ENABLED)

    driven.session.shutdown(retry_after=5)

    reason = R.DISCONNECT_REASON_SHUTTING_DOWN
    message = "gateway shutting down; reconnect to another gateway"
    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent({"disconnect": disconnect(reason, message, retry_after=5)})
    assert driven.session.events_received() == [SessionClosed(reason, message, by_peer=False)]


@pytest.mark.parametrize(
    ("reason", "retry"),
    [
        (R.DISCONNECT_REASON_FRAME_TOO_LARGE, True),
        (R.DISCONNECT_REASON_MALFORMED_FRAME, True),
        (R.DISCONNECT_REASON_SUPERSEDED, True),
        (R.DISCONNECT_REASON_UNSUPPORTED_VERSION, False),
    ],
)
def test_failure_reported_by_the_transport_disconnects_with_its_reason(
    reason: agent_pb2.DisconnectReason, retry: bool
) -> None:
    driven = drive_to(S.PENDING)

    driven.session.fail(reason, "something went wrong")

    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == driven.sent(
        {"disconnect": disconnect(reason, "something went wrong", retry=retry)}
    )
    assert driven.session.events_received() == [SessionClosed(reason, "something went wrong", by_peer=False)]


def test_lost_connection_closes_without_sending_anything() -> None:
    driven = drive_to(S.ENABLED)

    driven.session.connection_lost()

    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == [
        SessionClosed(R.DISCONNECT_REASON_UNSPECIFIED, "connection lost", by_peer=True)
    ]


def test_sessions_compare_by_identity_so_a_transport_can_keep_them_in_a_set() -> None:
    first, second = new_session(), new_session()

    assert first != second
    assert len({first, second}) == 2


CLOSERS: dict[str, tuple[ServerState, Callable[[Driven], None]]] = {
    "collector-disconnect": (S.ENABLED, lambda d: d.feed(disconnect=COLLECTOR_BYE)),
    "protocol-error": (S.PENDING, lambda d: d.feed(hello=HELLO)),
    "refused": (S.AUTHENTICATING, lambda d: d.session.authenticated(AuthDecision(False), NOW)),
    "fail": (S.AWAIT_HELLO, lambda d: d.session.fail(R.DISCONNECT_REASON_RATE_LIMITED, "slow")),
    "shutdown": (S.DISABLED, lambda d: d.session.shutdown()),
    "removed": (S.ENABLED, lambda d: d.session.removed("bye", revision=9)),
    "handshake-timeout": (S.AWAIT_PROOF, lambda d: d.session.tick(NOW + 100)),
    "heartbeat-timeout": (S.PENDING, lambda d: d.session.tick(NOW + 1000)),
    "connection-lost": (S.ENABLED, lambda d: d.session.connection_lost()),
}


@pytest.mark.parametrize("closer", CLOSERS)
def test_closed_session_sends_one_disconnect_at_most_and_nothing_after(closer: str) -> None:
    state, close = CLOSERS[closer]
    driven = drive_to(state)
    close(driven)
    sent = driven.session.data_to_send()
    events = driven.session.events_received()
    assert driven.session.closed
    assert [message.WhichOneof("body") for message in sent] in ([], ["disconnect"])
    assert [type(event) for event in events] == [SessionClosed]

    for kind in KINDS:
        driven.session.receive(message_of_kind(kind, driven.collector_sequence + 1), NOW + 2)
    driven.session.authenticated(accept(S.ENABLED, revision=99), NOW + 2)
    driven.session.state_changed(S.ENABLED, "too late", "alice", revision=100)
    driven.session.removed("too late", revision=101)
    driven.session.tick(NOW + 10_000)
    driven.session.fail(R.DISCONNECT_REASON_INTERNAL_ERROR, "too late")
    driven.session.shutdown()
    driven.session.connection_lost()

    assert driven.session.state is S.CLOSED
    assert driven.session.data_to_send() == []
    assert driven.session.events_received() == []
    assert driven.session.next_deadline() is None


# --- sequence numbers -------------------------------------------------------------------
def test_server_numbers_its_messages_one_by_one_from_one() -> None:
    session = new_session()
    session.receive(from_collector(1, hello=HELLO), NOW)
    session.receive(from_collector(2, proof=agent_pb2.Proof(signature=SIGNATURE)), NOW)
    session.authenticated(accept(S.PENDING), NOW)
    session.receive(from_collector(3, heartbeat=agent_pb2.Heartbeat()), NOW)
    session.state_changed(S.ENABLED, "", "alice", revision=2)
    session.state_changed(S.DISABLED, "", "alice", revision=3)
    session.receive(from_collector(4, heartbeat=agent_pb2.Heartbeat()), NOW)
    session.removed("", revision=4)

    sent = session.data_to_send()

    assert [message.sequence for message in sent] == list(range(1, 8))
    assert [message.WhichOneof("body") for message in sent] == [
        "challenge",
        "pending",
        "heartbeat_ack",
        "welcome",
        "state_change",
        "heartbeat_ack",
        "disconnect",
    ]
    assert not any(isinstance(event, SequenceGap) for event in session.events_received())


@pytest.mark.parametrize(
    ("sequences", "gaps"),
    [
        ([1, 2, 3, 4], []),
        ([1, 3, 4], [SequenceGap(2, 3)]),
        ([5, 6], [SequenceGap(1, 5)]),
        ([1, 2, 2, 3], [SequenceGap(3, 2)]),
        ([1, 2, 7, 8, 10], [SequenceGap(3, 7), SequenceGap(9, 10)]),
        ([0, 0, 0], []),
        ([1, 0, 2], []),
    ],
    ids=["in-order", "skipped", "late-start", "repeated", "two-gaps", "unset", "unset-between"],
)
def test_gap_in_the_collector_numbering_is_reported_and_the_session_carries_on(
    sequences: list[int], gaps: list[SequenceGap]
) -> None:
    session = new_session()

    for sequence in sequences:
        session.receive(unknown_kind(sequence), NOW)

    assert session.events_received() == gaps
    assert session.state is S.AWAIT_HELLO


def test_gap_is_reported_before_what_the_message_itself_causes() -> None:
    session = new_session()
    session.receive(from_collector(1, hello=HELLO), NOW)
    session.receive(from_collector(3, proof=agent_pb2.Proof(signature=SIGNATURE)), NOW)

    assert session.events_received() == [SequenceGap(2, 3), *AUTH_REQUESTED]


# --- pending and disabled collectors are told their state and nothing else ---------------
operations = st.lists(
    st.one_of(
        st.tuples(st.just("heartbeat"), st.floats(0, 80)),
        st.tuples(st.just("change"), st.sampled_from(sorted(ACCEPTED_STATES, key=str))),
        st.tuples(st.just("stale"), st.sampled_from(sorted(ACCEPTED_STATES, key=str))),
        st.tuples(st.just("tick"), st.floats(0, 100)),
        st.tuples(st.just("remove"), st.just(None)),
    ),
    max_size=30,
)


@given(first=st.sampled_from(sorted(ACCEPTED_STATES, key=str)), ops=operations)
def test_pending_and_disabled_sessions_are_only_ever_sent_their_state(
    first: ServerState, ops: list[tuple[str, object]]
) -> None:
    driven = drive_to(S.AUTHENTICATING)
    session = driven.session
    session.authenticated(accept(first), NOW)
    now, revision, sequence = NOW, 1, driven.server_sequence + len(session.data_to_send())

    for op, arg in ops:
        before = session.state
        if op == "heartbeat":
            assert isinstance(arg, float)
            now += arg
            driven.feed(now=now, heartbeat=agent_pb2.Heartbeat())
        elif op == "change":
            revision += 1
            session.state_changed(arg, "decided", "alice", revision)  # type: ignore[arg-type]
        elif op == "stale":
            session.state_changed(arg, "stale", "mallory", revision)  # type: ignore[arg-type]
        elif op == "tick":
            assert isinstance(arg, float)
            session.tick(now + arg)
        else:
            revision += 1
            session.removed("gone", revision)
        messages = session.data_to_send()
        for message in messages:
            sequence += 1
            kind = message.WhichOneof("body")
            assert message.sequence == sequence
            assert kind in {"pending", "welcome", "state_change", "heartbeat_ack", "disconnect"}
            if kind == "pending":
                assert session.state is S.PENDING
            if kind in {"welcome", "state_change"}:  # only ever the state it is now in
                assert getattr(message, kind).state == PROTO_BY_STATE[session.state]
        if before in {S.PENDING, S.DISABLED} and session.state is before:
            assert {message.WhichOneof("body") for message in messages} <= {"heartbeat_ack"}
        if session.closed:
            assert session.data_to_send() == []
            break
