from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CollectorState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLLECTOR_STATE_UNSPECIFIED: _ClassVar[CollectorState]
    COLLECTOR_STATE_PENDING: _ClassVar[CollectorState]
    COLLECTOR_STATE_ENABLED: _ClassVar[CollectorState]
    COLLECTOR_STATE_DISABLED: _ClassVar[CollectorState]

class DisconnectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISCONNECT_REASON_UNSPECIFIED: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_PROTOCOL_ERROR: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_UNSUPPORTED_VERSION: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_AUTHENTICATION_FAILED: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_NAME_CONFLICT: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_REMOVED: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_HANDSHAKE_TIMEOUT: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_FRAME_TOO_LARGE: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_MALFORMED_FRAME: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_SHUTTING_DOWN: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_HEARTBEAT_TIMEOUT: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_TOO_MANY_CONNECTIONS: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_RATE_LIMITED: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_INTERNAL_ERROR: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_CLIENT_SHUTDOWN: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_SUPERSEDED: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_UNAVAILABLE: _ClassVar[DisconnectReason]
COLLECTOR_STATE_UNSPECIFIED: CollectorState
COLLECTOR_STATE_PENDING: CollectorState
COLLECTOR_STATE_ENABLED: CollectorState
COLLECTOR_STATE_DISABLED: CollectorState
DISCONNECT_REASON_UNSPECIFIED: DisconnectReason
DISCONNECT_REASON_PROTOCOL_ERROR: DisconnectReason
DISCONNECT_REASON_UNSUPPORTED_VERSION: DisconnectReason
DISCONNECT_REASON_AUTHENTICATION_FAILED: DisconnectReason
DISCONNECT_REASON_BOUND_TO_OTHER_INSTANCE: DisconnectReason
DISCONNECT_REASON_NAME_CONFLICT: DisconnectReason
DISCONNECT_REASON_REMOVED: DisconnectReason
DISCONNECT_REASON_HANDSHAKE_TIMEOUT: DisconnectReason
DISCONNECT_REASON_FRAME_TOO_LARGE: DisconnectReason
DISCONNECT_REASON_MALFORMED_FRAME: DisconnectReason
DISCONNECT_REASON_SHUTTING_DOWN: DisconnectReason
DISCONNECT_REASON_HEARTBEAT_TIMEOUT: DisconnectReason
DISCONNECT_REASON_TOO_MANY_CONNECTIONS: DisconnectReason
DISCONNECT_REASON_RATE_LIMITED: DisconnectReason
DISCONNECT_REASON_INTERNAL_ERROR: DisconnectReason
DISCONNECT_REASON_CLIENT_SHUTDOWN: DisconnectReason
DISCONNECT_REASON_SUPERSEDED: DisconnectReason
DISCONNECT_REASON_UNAVAILABLE: DisconnectReason

class CollectorMessage(_message.Message):
    __slots__ = ("sequence", "sent_at_unix_ms", "hello", "proof", "heartbeat", "disconnect")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    sent_at_unix_ms: int
    hello: Hello
    proof: Proof
    heartbeat: Heartbeat
    disconnect: Disconnect
    def __init__(self, sequence: _Optional[int] = ..., sent_at_unix_ms: _Optional[int] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., proof: _Optional[_Union[Proof, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("sequence", "sent_at_unix_ms", "challenge", "pending", "welcome", "state_change", "heartbeat_ack", "disconnect")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    sent_at_unix_ms: int
    challenge: Challenge
    pending: Pending
    welcome: Welcome
    state_change: StateChange
    heartbeat_ack: HeartbeatAck
    disconnect: Disconnect
    def __init__(self, sequence: _Optional[int] = ..., sent_at_unix_ms: _Optional[int] = ..., challenge: _Optional[_Union[Challenge, _Mapping]] = ..., pending: _Optional[_Union[Pending, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., state_change: _Optional[_Union[StateChange, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol_version", "capabilities", "instance_uid", "name", "zone", "version", "bound_server_instance", "public_key", "username", "password_verifier")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BOUND_SERVER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_VERIFIER_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    instance_uid: str
    name: str
    zone: str
    version: str
    bound_server_instance: str
    public_key: bytes
    username: str
    password_verifier: str
    def __init__(self, protocol_version: _Optional[int] = ..., capabilities: _Optional[_Iterable[str]] = ..., instance_uid: _Optional[str] = ..., name: _Optional[str] = ..., zone: _Optional[str] = ..., version: _Optional[str] = ..., bound_server_instance: _Optional[str] = ..., public_key: _Optional[bytes] = ..., username: _Optional[str] = ..., password_verifier: _Optional[str] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("nonce", "server_instance")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SERVER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    server_instance: str
    def __init__(self, nonce: _Optional[bytes] = ..., server_instance: _Optional[str] = ...) -> None: ...

class Proof(_message.Message):
    __slots__ = ("signature",)
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    def __init__(self, signature: _Optional[bytes] = ...) -> None: ...

class Pending(_message.Message):
    __slots__ = ("fingerprint", "message", "heartbeat_interval_seconds", "session_id")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    message: str
    heartbeat_interval_seconds: int
    session_id: str
    def __init__(self, fingerprint: _Optional[str] = ..., message: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[int] = ..., session_id: _Optional[str] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("state", "server_instance", "heartbeat_interval_seconds", "session_id", "fingerprint", "reason")
    STATE_FIELD_NUMBER: _ClassVar[int]
    SERVER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    state: CollectorState
    server_instance: str
    heartbeat_interval_seconds: int
    session_id: str
    fingerprint: str
    reason: str
    def __init__(self, state: _Optional[_Union[CollectorState, str]] = ..., server_instance: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[int] = ..., session_id: _Optional[str] = ..., fingerprint: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("state", "reason", "changed_by")
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    state: CollectorState
    reason: str
    changed_by: str
    def __init__(self, state: _Optional[_Union[CollectorState, str]] = ..., reason: _Optional[str] = ..., changed_by: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Disconnect(_message.Message):
    __slots__ = ("reason", "message", "retry", "retry_after_seconds")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    reason: DisconnectReason
    message: str
    retry: bool
    retry_after_seconds: int
    def __init__(self, reason: _Optional[_Union[DisconnectReason, str]] = ..., message: _Optional[str] = ..., retry: _Optional[bool] = ..., retry_after_seconds: _Optional[int] = ...) -> None: ...
