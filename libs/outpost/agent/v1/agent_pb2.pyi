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
    DISCONNECT_REASON_ACCESS_KEY_REFUSED: _ClassVar[DisconnectReason]
    DISCONNECT_REASON_ENROLLMENT_REFUSED: _ClassVar[DisconnectReason]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_DISPATCHED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_TIMED_OUT: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class PortState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PORT_STATE_UNSPECIFIED: _ClassVar[PortState]
    PORT_STATE_OPEN: _ClassVar[PortState]
    PORT_STATE_CLOSED: _ClassVar[PortState]
    PORT_STATE_FILTERED: _ClassVar[PortState]
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
DISCONNECT_REASON_ACCESS_KEY_REFUSED: DisconnectReason
DISCONNECT_REASON_ENROLLMENT_REFUSED: DisconnectReason
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_DISPATCHED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_TIMED_OUT: JobState
JOB_STATE_CANCELLED: JobState
PORT_STATE_UNSPECIFIED: PortState
PORT_STATE_OPEN: PortState
PORT_STATE_CLOSED: PortState
PORT_STATE_FILTERED: PortState

class CollectorMessage(_message.Message):
    __slots__ = ("sequence", "sent_at_unix_ms", "hello", "proof", "heartbeat", "disconnect", "job_update", "result_batch", "key_rotation")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    JOB_UPDATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_BATCH_FIELD_NUMBER: _ClassVar[int]
    KEY_ROTATION_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    sent_at_unix_ms: int
    hello: Hello
    proof: Proof
    heartbeat: Heartbeat
    disconnect: Disconnect
    job_update: JobUpdate
    result_batch: ResultBatch
    key_rotation: KeyRotation
    def __init__(self, sequence: _Optional[int] = ..., sent_at_unix_ms: _Optional[int] = ..., hello: _Optional[_Union[Hello, _Mapping]] = ..., proof: _Optional[_Union[Proof, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ..., job_update: _Optional[_Union[JobUpdate, _Mapping]] = ..., result_batch: _Optional[_Union[ResultBatch, _Mapping]] = ..., key_rotation: _Optional[_Union[KeyRotation, _Mapping]] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("sequence", "sent_at_unix_ms", "challenge", "pending", "welcome", "state_change", "heartbeat_ack", "disconnect", "job_assignment", "job_cancel", "batch_ack", "config_update", "throttle", "rotation")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    JOB_ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    JOB_CANCEL_FIELD_NUMBER: _ClassVar[int]
    BATCH_ACK_FIELD_NUMBER: _ClassVar[int]
    CONFIG_UPDATE_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    ROTATION_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    sent_at_unix_ms: int
    challenge: Challenge
    pending: Pending
    welcome: Welcome
    state_change: StateChange
    heartbeat_ack: HeartbeatAck
    disconnect: Disconnect
    job_assignment: JobAssignment
    job_cancel: JobCancel
    batch_ack: BatchAck
    config_update: ConfigUpdate
    throttle: Throttle
    rotation: Rotation
    def __init__(self, sequence: _Optional[int] = ..., sent_at_unix_ms: _Optional[int] = ..., challenge: _Optional[_Union[Challenge, _Mapping]] = ..., pending: _Optional[_Union[Pending, _Mapping]] = ..., welcome: _Optional[_Union[Welcome, _Mapping]] = ..., state_change: _Optional[_Union[StateChange, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., disconnect: _Optional[_Union[Disconnect, _Mapping]] = ..., job_assignment: _Optional[_Union[JobAssignment, _Mapping]] = ..., job_cancel: _Optional[_Union[JobCancel, _Mapping]] = ..., batch_ack: _Optional[_Union[BatchAck, _Mapping]] = ..., config_update: _Optional[_Union[ConfigUpdate, _Mapping]] = ..., throttle: _Optional[_Union[Throttle, _Mapping]] = ..., rotation: _Optional[_Union[Rotation, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol_version", "capabilities", "instance_uid", "name", "zone", "version", "bound_server_instance", "public_key", "username", "password_verifier", "encryption_public_key", "spool", "sealing_algorithms", "enrollment_token")
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
    ENCRYPTION_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SPOOL_FIELD_NUMBER: _ClassVar[int]
    SEALING_ALGORITHMS_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_TOKEN_FIELD_NUMBER: _ClassVar[int]
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
    encryption_public_key: bytes
    spool: SpoolStatus
    sealing_algorithms: _containers.RepeatedScalarFieldContainer[str]
    enrollment_token: str
    def __init__(self, protocol_version: _Optional[int] = ..., capabilities: _Optional[_Iterable[str]] = ..., instance_uid: _Optional[str] = ..., name: _Optional[str] = ..., zone: _Optional[str] = ..., version: _Optional[str] = ..., bound_server_instance: _Optional[str] = ..., public_key: _Optional[bytes] = ..., username: _Optional[str] = ..., password_verifier: _Optional[str] = ..., encryption_public_key: _Optional[bytes] = ..., spool: _Optional[_Union[SpoolStatus, _Mapping]] = ..., sealing_algorithms: _Optional[_Iterable[str]] = ..., enrollment_token: _Optional[str] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("nonce", "server_instance", "password_parameters")
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SERVER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    server_instance: str
    password_parameters: _containers.RepeatedCompositeFieldContainer[PasswordParameters]
    def __init__(self, nonce: _Optional[bytes] = ..., server_instance: _Optional[str] = ..., password_parameters: _Optional[_Iterable[_Union[PasswordParameters, _Mapping]]] = ...) -> None: ...

class PasswordParameters(_message.Message):
    __slots__ = ("salt", "memory_kib", "time_cost", "parallelism", "public_key")
    SALT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_KIB_FIELD_NUMBER: _ClassVar[int]
    TIME_COST_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    salt: bytes
    memory_kib: int
    time_cost: int
    parallelism: int
    public_key: bytes
    def __init__(self, salt: _Optional[bytes] = ..., memory_kib: _Optional[int] = ..., time_cost: _Optional[int] = ..., parallelism: _Optional[int] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class Proof(_message.Message):
    __slots__ = ("signature", "password_proofs")
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_PROOFS_FIELD_NUMBER: _ClassVar[int]
    signature: bytes
    password_proofs: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, signature: _Optional[bytes] = ..., password_proofs: _Optional[_Iterable[bytes]] = ...) -> None: ...

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
    __slots__ = ("spool", "running_job_run_ids")
    SPOOL_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOB_RUN_IDS_FIELD_NUMBER: _ClassVar[int]
    spool: SpoolStatus
    running_job_run_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, spool: _Optional[_Union[SpoolStatus, _Mapping]] = ..., running_job_run_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SpoolStatus(_message.Message):
    __slots__ = ("batches", "bytes", "max_bytes", "max_age_seconds", "oldest_unix_ms", "dropped_full", "dropped_expired", "dropped_corrupt", "dropped_devices")
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    OLDEST_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FULL_FIELD_NUMBER: _ClassVar[int]
    DROPPED_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_CORRUPT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_DEVICES_FIELD_NUMBER: _ClassVar[int]
    batches: int
    bytes: int
    max_bytes: int
    max_age_seconds: int
    oldest_unix_ms: int
    dropped_full: int
    dropped_expired: int
    dropped_corrupt: int
    dropped_devices: int
    def __init__(self, batches: _Optional[int] = ..., bytes: _Optional[int] = ..., max_bytes: _Optional[int] = ..., max_age_seconds: _Optional[int] = ..., oldest_unix_ms: _Optional[int] = ..., dropped_full: _Optional[int] = ..., dropped_expired: _Optional[int] = ..., dropped_corrupt: _Optional[int] = ..., dropped_devices: _Optional[int] = ...) -> None: ...

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

class JobAssignment(_message.Message):
    __slots__ = ("job_run_id", "discovery", "targets", "exclusions", "ports", "probes", "credentials", "concurrency", "rate_per_second", "timeout_ms", "deadline_seconds", "dns_resolver", "batch_max_devices", "zone", "snmp_port", "ssh_port", "attempt")
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    EXCLUSIONS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    PROBES_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DNS_RESOLVER_FIELD_NUMBER: _ClassVar[int]
    BATCH_MAX_DEVICES_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    SNMP_PORT_FIELD_NUMBER: _ClassVar[int]
    SSH_PORT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_run_id: str
    discovery: str
    targets: _containers.RepeatedScalarFieldContainer[str]
    exclusions: _containers.RepeatedScalarFieldContainer[str]
    ports: _containers.RepeatedScalarFieldContainer[int]
    probes: _containers.RepeatedScalarFieldContainer[str]
    credentials: SealedSecret
    concurrency: int
    rate_per_second: int
    timeout_ms: int
    deadline_seconds: int
    dns_resolver: str
    batch_max_devices: int
    zone: str
    snmp_port: int
    ssh_port: int
    attempt: int
    def __init__(self, job_run_id: _Optional[str] = ..., discovery: _Optional[str] = ..., targets: _Optional[_Iterable[str]] = ..., exclusions: _Optional[_Iterable[str]] = ..., ports: _Optional[_Iterable[int]] = ..., probes: _Optional[_Iterable[str]] = ..., credentials: _Optional[_Union[SealedSecret, _Mapping]] = ..., concurrency: _Optional[int] = ..., rate_per_second: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., deadline_seconds: _Optional[int] = ..., dns_resolver: _Optional[str] = ..., batch_max_devices: _Optional[int] = ..., zone: _Optional[str] = ..., snmp_port: _Optional[int] = ..., ssh_port: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class SealedSecret(_message.Message):
    __slots__ = ("algorithm", "ephemeral_public_key", "nonce", "ciphertext", "context")
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    algorithm: str
    ephemeral_public_key: bytes
    nonce: bytes
    ciphertext: bytes
    context: str
    def __init__(self, algorithm: _Optional[str] = ..., ephemeral_public_key: _Optional[bytes] = ..., nonce: _Optional[bytes] = ..., ciphertext: _Optional[bytes] = ..., context: _Optional[str] = ...) -> None: ...

class CredentialSet(_message.Message):
    __slots__ = ("credentials",)
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    credentials: _containers.RepeatedCompositeFieldContainer[Credential]
    def __init__(self, credentials: _Optional[_Iterable[_Union[Credential, _Mapping]]] = ...) -> None: ...

class Credential(_message.Message):
    __slots__ = ("name", "snmp_v2c", "snmp_v3", "ssh")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SNMP_V2C_FIELD_NUMBER: _ClassVar[int]
    SNMP_V3_FIELD_NUMBER: _ClassVar[int]
    SSH_FIELD_NUMBER: _ClassVar[int]
    name: str
    snmp_v2c: SnmpV2c
    snmp_v3: SnmpV3
    ssh: SshLogin
    def __init__(self, name: _Optional[str] = ..., snmp_v2c: _Optional[_Union[SnmpV2c, _Mapping]] = ..., snmp_v3: _Optional[_Union[SnmpV3, _Mapping]] = ..., ssh: _Optional[_Union[SshLogin, _Mapping]] = ...) -> None: ...

class SnmpV2c(_message.Message):
    __slots__ = ("community",)
    COMMUNITY_FIELD_NUMBER: _ClassVar[int]
    community: str
    def __init__(self, community: _Optional[str] = ...) -> None: ...

class SnmpV3(_message.Message):
    __slots__ = ("username", "auth_protocol", "auth_key", "priv_protocol", "priv_key")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    AUTH_KEY_FIELD_NUMBER: _ClassVar[int]
    PRIV_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PRIV_KEY_FIELD_NUMBER: _ClassVar[int]
    username: str
    auth_protocol: str
    auth_key: str
    priv_protocol: str
    priv_key: str
    def __init__(self, username: _Optional[str] = ..., auth_protocol: _Optional[str] = ..., auth_key: _Optional[str] = ..., priv_protocol: _Optional[str] = ..., priv_key: _Optional[str] = ...) -> None: ...

class SshLogin(_message.Message):
    __slots__ = ("username", "password", "private_key_pem", "passphrase")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    private_key_pem: str
    passphrase: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., private_key_pem: _Optional[str] = ..., passphrase: _Optional[str] = ...) -> None: ...

class JobCancel(_message.Message):
    __slots__ = ("job_run_id", "reason", "attempt")
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_run_id: str
    reason: str
    attempt: int
    def __init__(self, job_run_id: _Optional[str] = ..., reason: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class JobUpdate(_message.Message):
    __slots__ = ("job_run_id", "state", "targets_done", "targets_total", "devices_found", "error", "batches_sent", "attempt")
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_DONE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FOUND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    BATCHES_SENT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_run_id: str
    state: JobState
    targets_done: int
    targets_total: int
    devices_found: int
    error: str
    batches_sent: int
    attempt: int
    def __init__(self, job_run_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., targets_done: _Optional[int] = ..., targets_total: _Optional[int] = ..., devices_found: _Optional[int] = ..., error: _Optional[str] = ..., batches_sent: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("job_run_id", "sequence", "devices", "observed_at_unix_ms", "attempt")
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_run_id: str
    sequence: int
    devices: _containers.RepeatedCompositeFieldContainer[DeviceObservation]
    observed_at_unix_ms: int
    attempt: int
    def __init__(self, job_run_id: _Optional[str] = ..., sequence: _Optional[int] = ..., devices: _Optional[_Iterable[_Union[DeviceObservation, _Mapping]]] = ..., observed_at_unix_ms: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class DeviceObservation(_message.Message):
    __slots__ = ("ip", "hostname", "alive_by", "rtt_ms", "ports", "snmp", "audit", "mac_addresses", "notes", "observed_at_unix_ms")
    IP_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    ALIVE_BY_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    SNMP_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ip: str
    hostname: str
    alive_by: str
    rtt_ms: float
    ports: _containers.RepeatedCompositeFieldContainer[PortObservation]
    snmp: SnmpFacts
    audit: HostAudit
    mac_addresses: _containers.RepeatedScalarFieldContainer[str]
    notes: _containers.RepeatedScalarFieldContainer[str]
    observed_at_unix_ms: int
    def __init__(self, ip: _Optional[str] = ..., hostname: _Optional[str] = ..., alive_by: _Optional[str] = ..., rtt_ms: _Optional[float] = ..., ports: _Optional[_Iterable[_Union[PortObservation, _Mapping]]] = ..., snmp: _Optional[_Union[SnmpFacts, _Mapping]] = ..., audit: _Optional[_Union[HostAudit, _Mapping]] = ..., mac_addresses: _Optional[_Iterable[str]] = ..., notes: _Optional[_Iterable[str]] = ..., observed_at_unix_ms: _Optional[int] = ...) -> None: ...

class PortObservation(_message.Message):
    __slots__ = ("port", "protocol", "service", "banner", "http", "tls", "ssh", "state", "service_product", "service_version")
    PORT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    BANNER_FIELD_NUMBER: _ClassVar[int]
    HTTP_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    SSH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_PRODUCT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    port: int
    protocol: str
    service: str
    banner: str
    http: HttpInfo
    tls: TlsInfo
    ssh: SshInfo
    state: PortState
    service_product: str
    service_version: str
    def __init__(self, port: _Optional[int] = ..., protocol: _Optional[str] = ..., service: _Optional[str] = ..., banner: _Optional[str] = ..., http: _Optional[_Union[HttpInfo, _Mapping]] = ..., tls: _Optional[_Union[TlsInfo, _Mapping]] = ..., ssh: _Optional[_Union[SshInfo, _Mapping]] = ..., state: _Optional[_Union[PortState, str]] = ..., service_product: _Optional[str] = ..., service_version: _Optional[str] = ...) -> None: ...

class HttpInfo(_message.Message):
    __slots__ = ("status", "server", "title")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    status: int
    server: str
    title: str
    def __init__(self, status: _Optional[int] = ..., server: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class TlsInfo(_message.Message):
    __slots__ = ("subject", "issuer", "not_after_unix", "subject_alt_names")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_UNIX_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ALT_NAMES_FIELD_NUMBER: _ClassVar[int]
    subject: str
    issuer: str
    not_after_unix: int
    subject_alt_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, subject: _Optional[str] = ..., issuer: _Optional[str] = ..., not_after_unix: _Optional[int] = ..., subject_alt_names: _Optional[_Iterable[str]] = ...) -> None: ...

class SshInfo(_message.Message):
    __slots__ = ("banner", "host_key_type", "host_key_fingerprint", "host_key_changed")
    BANNER_FIELD_NUMBER: _ClassVar[int]
    HOST_KEY_TYPE_FIELD_NUMBER: _ClassVar[int]
    HOST_KEY_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    HOST_KEY_CHANGED_FIELD_NUMBER: _ClassVar[int]
    banner: str
    host_key_type: str
    host_key_fingerprint: str
    host_key_changed: bool
    def __init__(self, banner: _Optional[str] = ..., host_key_type: _Optional[str] = ..., host_key_fingerprint: _Optional[str] = ..., host_key_changed: _Optional[bool] = ...) -> None: ...

class SnmpFacts(_message.Message):
    __slots__ = ("sys_name", "sys_descr", "sys_object_id", "sys_uptime_centiseconds", "engine_id", "interfaces")
    SYS_NAME_FIELD_NUMBER: _ClassVar[int]
    SYS_DESCR_FIELD_NUMBER: _ClassVar[int]
    SYS_OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SYS_UPTIME_CENTISECONDS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    sys_name: str
    sys_descr: str
    sys_object_id: str
    sys_uptime_centiseconds: int
    engine_id: str
    interfaces: _containers.RepeatedCompositeFieldContainer[NetworkInterface]
    def __init__(self, sys_name: _Optional[str] = ..., sys_descr: _Optional[str] = ..., sys_object_id: _Optional[str] = ..., sys_uptime_centiseconds: _Optional[int] = ..., engine_id: _Optional[str] = ..., interfaces: _Optional[_Iterable[_Union[NetworkInterface, _Mapping]]] = ...) -> None: ...

class NetworkInterface(_message.Message):
    __slots__ = ("name", "mac", "addresses", "description", "speed_bps")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SPEED_BPS_FIELD_NUMBER: _ClassVar[int]
    name: str
    mac: str
    addresses: _containers.RepeatedScalarFieldContainer[str]
    description: str
    speed_bps: int
    def __init__(self, name: _Optional[str] = ..., mac: _Optional[str] = ..., addresses: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., speed_bps: _Optional[int] = ...) -> None: ...

class HostAudit(_message.Message):
    __slots__ = ("hostname", "os_name", "os_version", "kernel", "uptime_seconds", "cpu_count", "memory_bytes", "interfaces")
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    OS_NAME_FIELD_NUMBER: _ClassVar[int]
    OS_VERSION_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    hostname: str
    os_name: str
    os_version: str
    kernel: str
    uptime_seconds: int
    cpu_count: int
    memory_bytes: int
    interfaces: _containers.RepeatedCompositeFieldContainer[NetworkInterface]
    def __init__(self, hostname: _Optional[str] = ..., os_name: _Optional[str] = ..., os_version: _Optional[str] = ..., kernel: _Optional[str] = ..., uptime_seconds: _Optional[int] = ..., cpu_count: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., interfaces: _Optional[_Iterable[_Union[NetworkInterface, _Mapping]]] = ...) -> None: ...

class BatchAck(_message.Message):
    __slots__ = ("job_run_id", "sequence", "attempt")
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_run_id: str
    sequence: int
    attempt: int
    def __init__(self, job_run_id: _Optional[str] = ..., sequence: _Optional[int] = ..., attempt: _Optional[int] = ...) -> None: ...

class Throttle(_message.Message):
    __slots__ = ("retry_after_ms", "reason")
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    retry_after_ms: int
    reason: str
    def __init__(self, retry_after_ms: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class Rotation(_message.Message):
    __slots__ = ("server_key", "access_key", "key_rotation")
    SERVER_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    KEY_ROTATION_FIELD_NUMBER: _ClassVar[int]
    server_key: ServerKeyAnnouncement
    access_key: AccessKeyUpdate
    key_rotation: KeyRotationResult
    def __init__(self, server_key: _Optional[_Union[ServerKeyAnnouncement, _Mapping]] = ..., access_key: _Optional[_Union[AccessKeyUpdate, _Mapping]] = ..., key_rotation: _Optional[_Union[KeyRotationResult, _Mapping]] = ...) -> None: ...

class KeyRotation(_message.Message):
    __slots__ = ("new_public_key", "signature", "new_key_signature")
    NEW_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    NEW_KEY_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    new_public_key: bytes
    signature: bytes
    new_key_signature: bytes
    def __init__(self, new_public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., new_key_signature: _Optional[bytes] = ...) -> None: ...

class KeyRotationResult(_message.Message):
    __slots__ = ("accepted", "fingerprint", "reason")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    fingerprint: str
    reason: str
    def __init__(self, accepted: _Optional[bool] = ..., fingerprint: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AccessKeyUpdate(_message.Message):
    __slots__ = ("access_key_text",)
    ACCESS_KEY_TEXT_FIELD_NUMBER: _ClassVar[int]
    access_key_text: str
    def __init__(self, access_key_text: _Optional[str] = ...) -> None: ...

class ServerKeyAnnouncement(_message.Message):
    __slots__ = ("public_key", "activates_at_unix_ms")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ACTIVATES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    activates_at_unix_ms: int
    def __init__(self, public_key: _Optional[bytes] = ..., activates_at_unix_ms: _Optional[int] = ...) -> None: ...

class ConfigUpdate(_message.Message):
    __slots__ = ("collector_check_minutes", "heartbeat_interval_seconds")
    COLLECTOR_CHECK_MINUTES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    collector_check_minutes: int
    heartbeat_interval_seconds: int
    def __init__(self, collector_check_minutes: _Optional[int] = ..., heartbeat_interval_seconds: _Optional[int] = ...) -> None: ...

class PollRequest(_message.Message):
    __slots__ = ("session_token", "messages", "records")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    messages: _containers.RepeatedCompositeFieldContainer[CollectorMessage]
    records: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, session_token: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[CollectorMessage, _Mapping]]] = ..., records: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PollResponse(_message.Message):
    __slots__ = ("session_token", "messages", "next_poll_seconds", "records")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_POLL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    messages: _containers.RepeatedCompositeFieldContainer[ServerMessage]
    next_poll_seconds: int
    records: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, session_token: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ServerMessage, _Mapping]]] = ..., next_poll_seconds: _Optional[int] = ..., records: _Optional[_Iterable[bytes]] = ...) -> None: ...
