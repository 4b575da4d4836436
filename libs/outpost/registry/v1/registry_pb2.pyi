import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from outpost.agent.v1 import agent_pb2 as _agent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_ACCEPTED: _ClassVar[Decision]
    DECISION_REFUSED: _ClassVar[Decision]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_STATE_CHANGED: _ClassVar[EventKind]
    EVENT_KIND_REMOVED: _ClassVar[EventKind]
    EVENT_KIND_BOOKMARK: _ClassVar[EventKind]
    EVENT_KIND_CREDENTIALS_CHANGED: _ClassVar[EventKind]

class CredentialType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CREDENTIAL_TYPE_UNSPECIFIED: _ClassVar[CredentialType]
    CREDENTIAL_TYPE_SNMP_V2C: _ClassVar[CredentialType]
    CREDENTIAL_TYPE_SNMP_V3: _ClassVar[CredentialType]
    CREDENTIAL_TYPE_SSH: _ClassVar[CredentialType]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_VIEWER: _ClassVar[Role]
    ROLE_OPERATOR: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]

class AccessKeyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_KEY_STATE_UNSPECIFIED: _ClassVar[AccessKeyState]
    ACCESS_KEY_STATE_VALID: _ClassVar[AccessKeyState]
    ACCESS_KEY_STATE_EXPIRED: _ClassVar[AccessKeyState]
    ACCESS_KEY_STATE_REVOKED: _ClassVar[AccessKeyState]

class AccessKeyEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_KEY_EVENT_KIND_UNSPECIFIED: _ClassVar[AccessKeyEventKind]
    ACCESS_KEY_EVENT_KIND_CHANGED: _ClassVar[AccessKeyEventKind]
    ACCESS_KEY_EVENT_KIND_BOOKMARK: _ClassVar[AccessKeyEventKind]

class ServerKeyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVER_KEY_STATE_UNSPECIFIED: _ClassVar[ServerKeyState]
    SERVER_KEY_STATE_CURRENT: _ClassVar[ServerKeyState]
    SERVER_KEY_STATE_NEXT: _ClassVar[ServerKeyState]
    SERVER_KEY_STATE_RETIRED: _ClassVar[ServerKeyState]

class EnrollmentTokenState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENROLLMENT_TOKEN_STATE_UNSPECIFIED: _ClassVar[EnrollmentTokenState]
    ENROLLMENT_TOKEN_STATE_VALID: _ClassVar[EnrollmentTokenState]
    ENROLLMENT_TOKEN_STATE_EXPIRED: _ClassVar[EnrollmentTokenState]
    ENROLLMENT_TOKEN_STATE_USED_UP: _ClassVar[EnrollmentTokenState]
    ENROLLMENT_TOKEN_STATE_REVOKED: _ClassVar[EnrollmentTokenState]
DECISION_UNSPECIFIED: Decision
DECISION_ACCEPTED: Decision
DECISION_REFUSED: Decision
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_STATE_CHANGED: EventKind
EVENT_KIND_REMOVED: EventKind
EVENT_KIND_BOOKMARK: EventKind
EVENT_KIND_CREDENTIALS_CHANGED: EventKind
CREDENTIAL_TYPE_UNSPECIFIED: CredentialType
CREDENTIAL_TYPE_SNMP_V2C: CredentialType
CREDENTIAL_TYPE_SNMP_V3: CredentialType
CREDENTIAL_TYPE_SSH: CredentialType
ROLE_UNSPECIFIED: Role
ROLE_VIEWER: Role
ROLE_OPERATOR: Role
ROLE_ADMIN: Role
ACCESS_KEY_STATE_UNSPECIFIED: AccessKeyState
ACCESS_KEY_STATE_VALID: AccessKeyState
ACCESS_KEY_STATE_EXPIRED: AccessKeyState
ACCESS_KEY_STATE_REVOKED: AccessKeyState
ACCESS_KEY_EVENT_KIND_UNSPECIFIED: AccessKeyEventKind
ACCESS_KEY_EVENT_KIND_CHANGED: AccessKeyEventKind
ACCESS_KEY_EVENT_KIND_BOOKMARK: AccessKeyEventKind
SERVER_KEY_STATE_UNSPECIFIED: ServerKeyState
SERVER_KEY_STATE_CURRENT: ServerKeyState
SERVER_KEY_STATE_NEXT: ServerKeyState
SERVER_KEY_STATE_RETIRED: ServerKeyState
ENROLLMENT_TOKEN_STATE_UNSPECIFIED: EnrollmentTokenState
ENROLLMENT_TOKEN_STATE_VALID: EnrollmentTokenState
ENROLLMENT_TOKEN_STATE_EXPIRED: EnrollmentTokenState
ENROLLMENT_TOKEN_STATE_USED_UP: EnrollmentTokenState
ENROLLMENT_TOKEN_STATE_REVOKED: EnrollmentTokenState

class Collector(_message.Message):
    __slots__ = ("instance_uid", "name", "zone", "version", "state", "fingerprint", "remote_address", "first_seen", "last_seen", "connected", "gateway_id", "transport", "registered_at", "state_reason", "state_changed_by", "username", "revision", "online", "last_error", "last_error_at", "clock_skew_ms", "spool", "check_in_seconds", "enrolled_by", "key_rotated_at", "password_on_record", "password_rotated_at", "previous_password_accepted_until", "password_last_proved")
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_AT_FIELD_NUMBER: _ClassVar[int]
    CLOCK_SKEW_MS_FIELD_NUMBER: _ClassVar[int]
    SPOOL_FIELD_NUMBER: _ClassVar[int]
    CHECK_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_BY_FIELD_NUMBER: _ClassVar[int]
    KEY_ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_ON_RECORD_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_PASSWORD_ACCEPTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_LAST_PROVED_FIELD_NUMBER: _ClassVar[int]
    instance_uid: str
    name: str
    zone: str
    version: str
    state: _agent_pb2.CollectorState
    fingerprint: str
    remote_address: str
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    connected: bool
    gateway_id: str
    transport: str
    registered_at: _timestamp_pb2.Timestamp
    state_reason: str
    state_changed_by: str
    username: str
    revision: int
    online: bool
    last_error: str
    last_error_at: _timestamp_pb2.Timestamp
    clock_skew_ms: int
    spool: _agent_pb2.SpoolStatus
    check_in_seconds: int
    enrolled_by: str
    key_rotated_at: _timestamp_pb2.Timestamp
    password_on_record: bool
    password_rotated_at: _timestamp_pb2.Timestamp
    previous_password_accepted_until: _timestamp_pb2.Timestamp
    password_last_proved: str
    def __init__(self, instance_uid: _Optional[str] = ..., name: _Optional[str] = ..., zone: _Optional[str] = ..., version: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.CollectorState, str]] = ..., fingerprint: _Optional[str] = ..., remote_address: _Optional[str] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., connected: _Optional[bool] = ..., gateway_id: _Optional[str] = ..., transport: _Optional[str] = ..., registered_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_reason: _Optional[str] = ..., state_changed_by: _Optional[str] = ..., username: _Optional[str] = ..., revision: _Optional[int] = ..., online: _Optional[bool] = ..., last_error: _Optional[str] = ..., last_error_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., clock_skew_ms: _Optional[int] = ..., spool: _Optional[_Union[_agent_pb2.SpoolStatus, _Mapping]] = ..., check_in_seconds: _Optional[int] = ..., enrolled_by: _Optional[str] = ..., key_rotated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., password_on_record: _Optional[bool] = ..., password_rotated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., previous_password_accepted_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., password_last_proved: _Optional[str] = ...) -> None: ...

class RotateCollectorKeyRequest(_message.Message):
    __slots__ = ("instance_uid", "old_public_key", "rotation", "handshake_hash", "session_id", "gateway_id", "remote_address")
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    OLD_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    HANDSHAKE_HASH_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    instance_uid: str
    old_public_key: bytes
    rotation: _agent_pb2.KeyRotation
    handshake_hash: bytes
    session_id: str
    gateway_id: str
    remote_address: str
    def __init__(self, instance_uid: _Optional[str] = ..., old_public_key: _Optional[bytes] = ..., rotation: _Optional[_Union[_agent_pb2.KeyRotation, _Mapping]] = ..., handshake_hash: _Optional[bytes] = ..., session_id: _Optional[str] = ..., gateway_id: _Optional[str] = ..., remote_address: _Optional[str] = ...) -> None: ...

class RotateCollectorKeyResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _agent_pb2.KeyRotationResult
    def __init__(self, result: _Optional[_Union[_agent_pb2.KeyRotationResult, _Mapping]] = ...) -> None: ...

class AuthenticateCollectorRequest(_message.Message):
    __slots__ = ("hello", "nonce", "signature", "remote_address", "gateway_id", "session_id", "transport", "access_key_id", "handshake_hash", "password_parameters", "password_proofs")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    HANDSHAKE_HASH_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_PROOFS_FIELD_NUMBER: _ClassVar[int]
    hello: _agent_pb2.Hello
    nonce: bytes
    signature: bytes
    remote_address: str
    gateway_id: str
    session_id: str
    transport: str
    access_key_id: str
    handshake_hash: bytes
    password_parameters: _containers.RepeatedCompositeFieldContainer[_agent_pb2.PasswordParameters]
    password_proofs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, hello: _Optional[_Union[_agent_pb2.Hello, _Mapping]] = ..., nonce: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., remote_address: _Optional[str] = ..., gateway_id: _Optional[str] = ..., session_id: _Optional[str] = ..., transport: _Optional[str] = ..., access_key_id: _Optional[str] = ..., handshake_hash: _Optional[bytes] = ..., password_parameters: _Optional[_Iterable[_Union[_agent_pb2.PasswordParameters, _Mapping]]] = ..., password_proofs: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetPasswordParametersRequest(_message.Message):
    __slots__ = ("instance_uid", "public_key")
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    instance_uid: str
    public_key: bytes
    def __init__(self, instance_uid: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class GetPasswordParametersResponse(_message.Message):
    __slots__ = ("parameters",)
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    parameters: _containers.RepeatedCompositeFieldContainer[_agent_pb2.PasswordParameters]
    def __init__(self, parameters: _Optional[_Iterable[_Union[_agent_pb2.PasswordParameters, _Mapping]]] = ...) -> None: ...

class SetCollectorPasswordRequest(_message.Message):
    __slots__ = ("name", "password", "overlap_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    password: str
    overlap_seconds: int
    def __init__(self, name: _Optional[str] = ..., password: _Optional[str] = ..., overlap_seconds: _Optional[int] = ...) -> None: ...

class SetCollectorPasswordResponse(_message.Message):
    __slots__ = ("collector",)
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    collector: Collector
    def __init__(self, collector: _Optional[_Union[Collector, _Mapping]] = ...) -> None: ...

class AuthenticateCollectorResponse(_message.Message):
    __slots__ = ("decision", "state", "refusal", "message", "fingerprint", "server_instance", "heartbeat_interval_seconds", "revision", "state_reason", "state_changed_by", "name", "zone", "retry_after_seconds")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    SERVER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    decision: Decision
    state: _agent_pb2.CollectorState
    refusal: _agent_pb2.DisconnectReason
    message: str
    fingerprint: str
    server_instance: str
    heartbeat_interval_seconds: int
    revision: int
    state_reason: str
    state_changed_by: str
    name: str
    zone: str
    retry_after_seconds: int
    def __init__(self, decision: _Optional[_Union[Decision, str]] = ..., state: _Optional[_Union[_agent_pb2.CollectorState, str]] = ..., refusal: _Optional[_Union[_agent_pb2.DisconnectReason, str]] = ..., message: _Optional[str] = ..., fingerprint: _Optional[str] = ..., server_instance: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[int] = ..., revision: _Optional[int] = ..., state_reason: _Optional[str] = ..., state_changed_by: _Optional[str] = ..., name: _Optional[str] = ..., zone: _Optional[str] = ..., retry_after_seconds: _Optional[int] = ...) -> None: ...

class WatchCollectorsRequest(_message.Message):
    __slots__ = ("since_revision",)
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    since_revision: int
    def __init__(self, since_revision: _Optional[int] = ...) -> None: ...

class CollectorEvent(_message.Message):
    __slots__ = ("revision", "kind", "instance_uid", "name", "state", "reason", "changed_by", "zone")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    revision: int
    kind: EventKind
    instance_uid: str
    name: str
    state: _agent_pb2.CollectorState
    reason: str
    changed_by: str
    zone: str
    def __init__(self, revision: _Optional[int] = ..., kind: _Optional[_Union[EventKind, str]] = ..., instance_uid: _Optional[str] = ..., name: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.CollectorState, str]] = ..., reason: _Optional[str] = ..., changed_by: _Optional[str] = ..., zone: _Optional[str] = ...) -> None: ...

class ListCollectorCredentialsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "instance_uids")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_UIDS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    instance_uids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., instance_uids: _Optional[_Iterable[str]] = ...) -> None: ...

class StoredPassword(_message.Message):
    __slots__ = ("slot", "parameters", "stored_key", "accepted_until")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    STORED_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    slot: str
    parameters: _agent_pb2.PasswordParameters
    stored_key: bytes
    accepted_until: _timestamp_pb2.Timestamp
    def __init__(self, slot: _Optional[str] = ..., parameters: _Optional[_Union[_agent_pb2.PasswordParameters, _Mapping]] = ..., stored_key: _Optional[bytes] = ..., accepted_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CollectorCredentials(_message.Message):
    __slots__ = ("instance_uid", "name", "zone", "state", "state_reason", "revision", "public_key", "encryption_public_key", "enrolled", "passwords", "version", "sealing_algorithms", "access_key_id", "password_last_proved")
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    PASSWORDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SEALING_ALGORITHMS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_LAST_PROVED_FIELD_NUMBER: _ClassVar[int]
    instance_uid: str
    name: str
    zone: str
    state: _agent_pb2.CollectorState
    state_reason: str
    revision: int
    public_key: bytes
    encryption_public_key: bytes
    enrolled: bool
    passwords: _containers.RepeatedCompositeFieldContainer[StoredPassword]
    version: str
    sealing_algorithms: _containers.RepeatedScalarFieldContainer[str]
    access_key_id: str
    password_last_proved: str
    def __init__(self, instance_uid: _Optional[str] = ..., name: _Optional[str] = ..., zone: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.CollectorState, str]] = ..., state_reason: _Optional[str] = ..., revision: _Optional[int] = ..., public_key: _Optional[bytes] = ..., encryption_public_key: _Optional[bytes] = ..., enrolled: _Optional[bool] = ..., passwords: _Optional[_Iterable[_Union[StoredPassword, _Mapping]]] = ..., version: _Optional[str] = ..., sealing_algorithms: _Optional[_Iterable[str]] = ..., access_key_id: _Optional[str] = ..., password_last_proved: _Optional[str] = ...) -> None: ...

class ListCollectorCredentialsResponse(_message.Message):
    __slots__ = ("collectors", "next_page_token", "revision")
    COLLECTORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    collectors: _containers.RepeatedCompositeFieldContainer[CollectorCredentials]
    next_page_token: str
    revision: int
    def __init__(self, collectors: _Optional[_Iterable[_Union[CollectorCredentials, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class SessionReport(_message.Message):
    __slots__ = ("instance_uid", "session_id", "connected", "remote_address", "transport", "last_error", "last_heard_at", "clock_skew_ms", "spool", "check_in_seconds")
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARD_AT_FIELD_NUMBER: _ClassVar[int]
    CLOCK_SKEW_MS_FIELD_NUMBER: _ClassVar[int]
    SPOOL_FIELD_NUMBER: _ClassVar[int]
    CHECK_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    instance_uid: str
    session_id: str
    connected: bool
    remote_address: str
    transport: str
    last_error: str
    last_heard_at: _timestamp_pb2.Timestamp
    clock_skew_ms: int
    spool: _agent_pb2.SpoolStatus
    check_in_seconds: int
    def __init__(self, instance_uid: _Optional[str] = ..., session_id: _Optional[str] = ..., connected: _Optional[bool] = ..., remote_address: _Optional[str] = ..., transport: _Optional[str] = ..., last_error: _Optional[str] = ..., last_heard_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., clock_skew_ms: _Optional[int] = ..., spool: _Optional[_Union[_agent_pb2.SpoolStatus, _Mapping]] = ..., check_in_seconds: _Optional[int] = ...) -> None: ...

class ReportSessionsRequest(_message.Message):
    __slots__ = ("gateway_id", "sessions", "complete")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    sessions: _containers.RepeatedCompositeFieldContainer[SessionReport]
    complete: bool
    def __init__(self, gateway_id: _Optional[str] = ..., sessions: _Optional[_Iterable[_Union[SessionReport, _Mapping]]] = ..., complete: _Optional[bool] = ...) -> None: ...

class ReportSessionsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("server_instance", "version", "started_at", "database", "heartbeat_interval_seconds", "server_key_fingerprint", "next_server_key_fingerprint", "next_server_key_activates_at")
    SERVER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NEXT_SERVER_KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NEXT_SERVER_KEY_ACTIVATES_AT_FIELD_NUMBER: _ClassVar[int]
    server_instance: str
    version: str
    started_at: _timestamp_pb2.Timestamp
    database: str
    heartbeat_interval_seconds: int
    server_key_fingerprint: str
    next_server_key_fingerprint: str
    next_server_key_activates_at: _timestamp_pb2.Timestamp
    def __init__(self, server_instance: _Optional[str] = ..., version: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., database: _Optional[str] = ..., heartbeat_interval_seconds: _Optional[int] = ..., server_key_fingerprint: _Optional[str] = ..., next_server_key_fingerprint: _Optional[str] = ..., next_server_key_activates_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListCollectorsRequest(_message.Message):
    __slots__ = ("state", "zone", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: _agent_pb2.CollectorState
    zone: str
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[_agent_pb2.CollectorState, str]] = ..., zone: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCollectorsResponse(_message.Message):
    __slots__ = ("collectors", "next_page_token")
    COLLECTORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collectors: _containers.RepeatedCompositeFieldContainer[Collector]
    next_page_token: str
    def __init__(self, collectors: _Optional[_Iterable[_Union[Collector, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetCollectorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetCollectorResponse(_message.Message):
    __slots__ = ("collector",)
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    collector: Collector
    def __init__(self, collector: _Optional[_Union[Collector, _Mapping]] = ...) -> None: ...

class RegisterCollectorRequest(_message.Message):
    __slots__ = ("name", "username", "password", "enable", "actor", "fingerprint")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    username: str
    password: str
    enable: bool
    actor: str
    fingerprint: str
    def __init__(self, name: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., enable: _Optional[bool] = ..., actor: _Optional[str] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class RegisterCollectorResponse(_message.Message):
    __slots__ = ("collector",)
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    collector: Collector
    def __init__(self, collector: _Optional[_Union[Collector, _Mapping]] = ...) -> None: ...

class EnableCollectorRequest(_message.Message):
    __slots__ = ("name", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EnableCollectorResponse(_message.Message):
    __slots__ = ("collector",)
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    collector: Collector
    def __init__(self, collector: _Optional[_Union[Collector, _Mapping]] = ...) -> None: ...

class DisableCollectorRequest(_message.Message):
    __slots__ = ("name", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DisableCollectorResponse(_message.Message):
    __slots__ = ("collector",)
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    collector: Collector
    def __init__(self, collector: _Optional[_Union[Collector, _Mapping]] = ...) -> None: ...

class RemoveCollectorRequest(_message.Message):
    __slots__ = ("name", "actor", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    actor: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RemoveCollectorResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NameConflict(_message.Message):
    __slots__ = ("name", "instance_uid", "fingerprint", "remote_address", "first_seen", "last_seen", "attempts", "held_by_fingerprint")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    HELD_BY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    instance_uid: str
    fingerprint: str
    remote_address: str
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    attempts: int
    held_by_fingerprint: str
    def __init__(self, name: _Optional[str] = ..., instance_uid: _Optional[str] = ..., fingerprint: _Optional[str] = ..., remote_address: _Optional[str] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., held_by_fingerprint: _Optional[str] = ...) -> None: ...

class ListNameConflictsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListNameConflictsResponse(_message.Message):
    __slots__ = ("conflicts", "next_page_token")
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    conflicts: _containers.RepeatedCompositeFieldContainer[NameConflict]
    next_page_token: str
    def __init__(self, conflicts: _Optional[_Iterable[_Union[NameConflict, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CredentialInfo(_message.Message):
    __slots__ = ("name", "type", "username", "created_at", "created_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: CredentialType
    username: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[CredentialType, str]] = ..., username: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...

class CreateCredentialRequest(_message.Message):
    __slots__ = ("credential", "actor")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    credential: _agent_pb2.Credential
    actor: str
    def __init__(self, credential: _Optional[_Union[_agent_pb2.Credential, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class CreateCredentialResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: CredentialInfo
    def __init__(self, credential: _Optional[_Union[CredentialInfo, _Mapping]] = ...) -> None: ...

class ListCredentialsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCredentialsResponse(_message.Message):
    __slots__ = ("credentials", "next_page_token")
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    credentials: _containers.RepeatedCompositeFieldContainer[CredentialInfo]
    next_page_token: str
    def __init__(self, credentials: _Optional[_Iterable[_Union[CredentialInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteCredentialRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCredentialResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SealCredentialsRequest(_message.Message):
    __slots__ = ("collector_instance_uid", "names", "context")
    COLLECTOR_INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    collector_instance_uid: str
    names: _containers.RepeatedScalarFieldContainer[str]
    context: str
    def __init__(self, collector_instance_uid: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., context: _Optional[str] = ...) -> None: ...

class SealCredentialsResponse(_message.Message):
    __slots__ = ("sealed",)
    SEALED_FIELD_NUMBER: _ClassVar[int]
    sealed: _agent_pb2.SealedSecret
    def __init__(self, sealed: _Optional[_Union[_agent_pb2.SealedSecret, _Mapping]] = ...) -> None: ...

class ExplainCollectorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class Finding(_message.Message):
    __slots__ = ("code", "severity", "message", "at", "advice")
    CODE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    code: str
    severity: str
    message: str
    at: _timestamp_pb2.Timestamp
    advice: str
    def __init__(self, code: _Optional[str] = ..., severity: _Optional[str] = ..., message: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., advice: _Optional[str] = ...) -> None: ...

class ExplainCollectorResponse(_message.Message):
    __slots__ = ("name", "live", "summary", "findings", "collector")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    live: bool
    summary: str
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    collector: Collector
    def __init__(self, name: _Optional[str] = ..., live: _Optional[bool] = ..., summary: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ..., collector: _Optional[_Union[Collector, _Mapping]] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ("name", "role", "created_at", "created_by", "expires_at", "revoked_at", "revoked_by", "last_used_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Role
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    revoked_by: str
    last_used_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_by: _Optional[str] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("name", "role", "expires_in_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Role
    expires_in_seconds: int
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token", "secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    token: Token
    secret: str
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("include_revoked", "page_size", "page_token")
    INCLUDE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    include_revoked: bool
    page_size: int
    page_token: str
    def __init__(self, include_revoked: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens", "next_page_token")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[Token]
    next_page_token: str
    def __init__(self, tokens: _Optional[_Iterable[_Union[Token, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ...) -> None: ...

class AuthenticateTokenRequest(_message.Message):
    __slots__ = ("token_sha256",)
    TOKEN_SHA256_FIELD_NUMBER: _ClassVar[int]
    token_sha256: bytes
    def __init__(self, token_sha256: _Optional[bytes] = ...) -> None: ...

class AuthenticateTokenResponse(_message.Message):
    __slots__ = ("name", "role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Role
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ...) -> None: ...

class AccessKeyInfo(_message.Message):
    __slots__ = ("name", "key_id", "zone", "created_at", "created_by", "expires_at", "revoked_at", "revoked_by", "state", "replaced_by_key_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    key_id: str
    zone: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    expires_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    revoked_by: str
    state: AccessKeyState
    replaced_by_key_id: str
    def __init__(self, name: _Optional[str] = ..., key_id: _Optional[str] = ..., zone: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_by: _Optional[str] = ..., state: _Optional[_Union[AccessKeyState, str]] = ..., replaced_by_key_id: _Optional[str] = ...) -> None: ...

class CreateAccessKeyRequest(_message.Message):
    __slots__ = ("name", "zone", "expires_in_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    zone: str
    expires_in_seconds: int
    def __init__(self, name: _Optional[str] = ..., zone: _Optional[str] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class CreateAccessKeyResponse(_message.Message):
    __slots__ = ("access_key", "access_key_text", "server_key_fingerprint")
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_TEXT_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    access_key: AccessKeyInfo
    access_key_text: str
    server_key_fingerprint: str
    def __init__(self, access_key: _Optional[_Union[AccessKeyInfo, _Mapping]] = ..., access_key_text: _Optional[str] = ..., server_key_fingerprint: _Optional[str] = ...) -> None: ...

class ListAccessKeysRequest(_message.Message):
    __slots__ = ("include_revoked", "page_size", "page_token")
    INCLUDE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    include_revoked: bool
    page_size: int
    page_token: str
    def __init__(self, include_revoked: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAccessKeysResponse(_message.Message):
    __slots__ = ("access_keys", "next_page_token")
    ACCESS_KEYS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    access_keys: _containers.RepeatedCompositeFieldContainer[AccessKeyInfo]
    next_page_token: str
    def __init__(self, access_keys: _Optional[_Iterable[_Union[AccessKeyInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeAccessKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeAccessKeyResponse(_message.Message):
    __slots__ = ("access_key",)
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    access_key: AccessKeyInfo
    def __init__(self, access_key: _Optional[_Union[AccessKeyInfo, _Mapping]] = ...) -> None: ...

class WatchAccessKeysRequest(_message.Message):
    __slots__ = ("since_revision",)
    SINCE_REVISION_FIELD_NUMBER: _ClassVar[int]
    since_revision: int
    def __init__(self, since_revision: _Optional[int] = ...) -> None: ...

class AccessKeyEvent(_message.Message):
    __slots__ = ("revision", "kind", "key_id", "name", "zone", "psk", "expires_at", "revoked", "replaced_by_key_id")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    PSK_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    revision: int
    kind: AccessKeyEventKind
    key_id: str
    name: str
    zone: str
    psk: bytes
    expires_at: _timestamp_pb2.Timestamp
    revoked: bool
    replaced_by_key_id: str
    def __init__(self, revision: _Optional[int] = ..., kind: _Optional[_Union[AccessKeyEventKind, str]] = ..., key_id: _Optional[str] = ..., name: _Optional[str] = ..., zone: _Optional[str] = ..., psk: _Optional[bytes] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked: _Optional[bool] = ..., replaced_by_key_id: _Optional[str] = ...) -> None: ...

class GetServerKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerKey(_message.Message):
    __slots__ = ("public_key", "private_key", "state", "activated_at", "fingerprint", "retires_at")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ACTIVATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    RETIRES_AT_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    private_key: bytes
    state: ServerKeyState
    activated_at: _timestamp_pb2.Timestamp
    fingerprint: str
    retires_at: _timestamp_pb2.Timestamp
    def __init__(self, public_key: _Optional[bytes] = ..., private_key: _Optional[bytes] = ..., state: _Optional[_Union[ServerKeyState, str]] = ..., activated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fingerprint: _Optional[str] = ..., retires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetServerKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ServerKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[ServerKey, _Mapping]]] = ...) -> None: ...

class EnrollmentTokenInfo(_message.Message):
    __slots__ = ("name", "token_id", "zone", "uses_allowed", "uses_used", "expires_at", "cidrs", "created_at", "created_by", "revoked_at", "revoked_by", "state")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    USES_ALLOWED_FIELD_NUMBER: _ClassVar[int]
    USES_USED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CIDRS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    token_id: str
    zone: str
    uses_allowed: int
    uses_used: int
    expires_at: _timestamp_pb2.Timestamp
    cidrs: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    revoked_at: _timestamp_pb2.Timestamp
    revoked_by: str
    state: EnrollmentTokenState
    def __init__(self, name: _Optional[str] = ..., token_id: _Optional[str] = ..., zone: _Optional[str] = ..., uses_allowed: _Optional[int] = ..., uses_used: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cidrs: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_by: _Optional[str] = ..., state: _Optional[_Union[EnrollmentTokenState, str]] = ...) -> None: ...

class CreateEnrollmentTokenRequest(_message.Message):
    __slots__ = ("name", "zone", "uses", "expires_in_seconds", "cidrs")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    USES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CIDRS_FIELD_NUMBER: _ClassVar[int]
    name: str
    zone: str
    uses: int
    expires_in_seconds: int
    cidrs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., zone: _Optional[str] = ..., uses: _Optional[int] = ..., expires_in_seconds: _Optional[int] = ..., cidrs: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateEnrollmentTokenResponse(_message.Message):
    __slots__ = ("enrollment_token", "enrollment_token_text")
    ENROLLMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_TOKEN_TEXT_FIELD_NUMBER: _ClassVar[int]
    enrollment_token: EnrollmentTokenInfo
    enrollment_token_text: str
    def __init__(self, enrollment_token: _Optional[_Union[EnrollmentTokenInfo, _Mapping]] = ..., enrollment_token_text: _Optional[str] = ...) -> None: ...

class ListEnrollmentTokensRequest(_message.Message):
    __slots__ = ("include_revoked", "page_size", "page_token")
    INCLUDE_REVOKED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    include_revoked: bool
    page_size: int
    page_token: str
    def __init__(self, include_revoked: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEnrollmentTokensResponse(_message.Message):
    __slots__ = ("enrollment_tokens", "next_page_token")
    ENROLLMENT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    enrollment_tokens: _containers.RepeatedCompositeFieldContainer[EnrollmentTokenInfo]
    next_page_token: str
    def __init__(self, enrollment_tokens: _Optional[_Iterable[_Union[EnrollmentTokenInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RevokeEnrollmentTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeEnrollmentTokenResponse(_message.Message):
    __slots__ = ("enrollment_token",)
    ENROLLMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    enrollment_token: EnrollmentTokenInfo
    def __init__(self, enrollment_token: _Optional[_Union[EnrollmentTokenInfo, _Mapping]] = ...) -> None: ...

class RotateServerKeyRequest(_message.Message):
    __slots__ = ("activate_in_seconds", "retire_after_seconds")
    ACTIVATE_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RETIRE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    activate_in_seconds: int
    retire_after_seconds: int
    def __init__(self, activate_in_seconds: _Optional[int] = ..., retire_after_seconds: _Optional[int] = ...) -> None: ...

class RotateAccessKeyRequest(_message.Message):
    __slots__ = ("name", "overlap_seconds", "expires_in_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    overlap_seconds: int
    expires_in_seconds: int
    def __init__(self, name: _Optional[str] = ..., overlap_seconds: _Optional[int] = ..., expires_in_seconds: _Optional[int] = ...) -> None: ...

class RotateAccessKeyResponse(_message.Message):
    __slots__ = ("access_key", "replaced", "access_key_text", "server_key_fingerprint")
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_TEXT_FIELD_NUMBER: _ClassVar[int]
    SERVER_KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    access_key: AccessKeyInfo
    replaced: AccessKeyInfo
    access_key_text: str
    server_key_fingerprint: str
    def __init__(self, access_key: _Optional[_Union[AccessKeyInfo, _Mapping]] = ..., replaced: _Optional[_Union[AccessKeyInfo, _Mapping]] = ..., access_key_text: _Optional[str] = ..., server_key_fingerprint: _Optional[str] = ...) -> None: ...

class RotateServerKeyResponse(_message.Message):
    __slots__ = ("next_fingerprint", "activates_at", "current_fingerprint", "current_retires_at")
    NEXT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    ACTIVATES_AT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_RETIRES_AT_FIELD_NUMBER: _ClassVar[int]
    next_fingerprint: str
    activates_at: _timestamp_pb2.Timestamp
    current_fingerprint: str
    current_retires_at: _timestamp_pb2.Timestamp
    def __init__(self, next_fingerprint: _Optional[str] = ..., activates_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current_fingerprint: _Optional[str] = ..., current_retires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
