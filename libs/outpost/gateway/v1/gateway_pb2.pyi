import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from outpost.agent.v1 import agent_pb2 as _agent_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Listener(_message.Message):
    __slots__ = ("transport", "address", "tls")
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    transport: str
    address: str
    tls: bool
    def __init__(self, transport: _Optional[str] = ..., address: _Optional[str] = ..., tls: _Optional[bool] = ...) -> None: ...

class GetGatewayInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetGatewayInfoResponse(_message.Message):
    __slots__ = ("gateway_id", "version", "listeners", "started_at", "sessions")
    GATEWAY_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LISTENERS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    gateway_id: str
    version: str
    listeners: _containers.RepeatedCompositeFieldContainer[Listener]
    started_at: _timestamp_pb2.Timestamp
    sessions: int
    def __init__(self, gateway_id: _Optional[str] = ..., version: _Optional[str] = ..., listeners: _Optional[_Iterable[_Union[Listener, _Mapping]]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sessions: _Optional[int] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "instance_uid", "name", "transport", "remote_address", "state", "opened_at", "last_message_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    REMOTE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_MESSAGE_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    instance_uid: str
    name: str
    transport: str
    remote_address: str
    state: _agent_pb2.CollectorState
    opened_at: _timestamp_pb2.Timestamp
    last_message_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., instance_uid: _Optional[str] = ..., name: _Optional[str] = ..., transport: _Optional[str] = ..., remote_address: _Optional[str] = ..., state: _Optional[_Union[_agent_pb2.CollectorState, str]] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_message_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Port(_message.Message):
    __slots__ = ("port", "protocol", "service", "banner", "details", "first_seen", "last_seen", "state")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PORT_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    BANNER_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    port: int
    protocol: str
    service: str
    banner: str
    details: _containers.ScalarMap[str, str]
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    state: str
    def __init__(self, port: _Optional[int] = ..., protocol: _Optional[str] = ..., service: _Optional[str] = ..., banner: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("id", "zone", "ip", "hostname", "mac_addresses", "snmp_engine_id", "ports", "facts", "first_seen", "last_seen", "last_collector", "last_job_run_id", "notes", "retired", "missed_runs", "retired_at")
    class FactsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    SNMP_ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    RETIRED_FIELD_NUMBER: _ClassVar[int]
    MISSED_RUNS_FIELD_NUMBER: _ClassVar[int]
    RETIRED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    zone: str
    ip: str
    hostname: str
    mac_addresses: _containers.RepeatedScalarFieldContainer[str]
    snmp_engine_id: str
    ports: _containers.RepeatedCompositeFieldContainer[Port]
    facts: _containers.ScalarMap[str, str]
    first_seen: _timestamp_pb2.Timestamp
    last_seen: _timestamp_pb2.Timestamp
    last_collector: str
    last_job_run_id: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    retired: bool
    missed_runs: int
    retired_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., zone: _Optional[str] = ..., ip: _Optional[str] = ..., hostname: _Optional[str] = ..., mac_addresses: _Optional[_Iterable[str]] = ..., snmp_engine_id: _Optional[str] = ..., ports: _Optional[_Iterable[_Union[Port, _Mapping]]] = ..., facts: _Optional[_Mapping[str, str]] = ..., first_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_collector: _Optional[str] = ..., last_job_run_id: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ..., retired: _Optional[bool] = ..., missed_runs: _Optional[int] = ..., retired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeviceChange(_message.Message):
    __slots__ = ("field", "old_value", "new_value", "changed_at", "job_run_id")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    OLD_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    JOB_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    field: str
    old_value: str
    new_value: str
    changed_at: _timestamp_pb2.Timestamp
    job_run_id: str
    def __init__(self, field: _Optional[str] = ..., old_value: _Optional[str] = ..., new_value: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., job_run_id: _Optional[str] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("zone", "limit", "include_retired", "page_size", "page_token", "cidr", "port", "service", "seen_since")
    ZONE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RETIRED_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CIDR_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SEEN_SINCE_FIELD_NUMBER: _ClassVar[int]
    zone: str
    limit: int
    include_retired: bool
    page_size: int
    page_token: str
    cidr: str
    port: int
    service: str
    seen_since: _timestamp_pb2.Timestamp
    def __init__(self, zone: _Optional[str] = ..., limit: _Optional[int] = ..., include_retired: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., cidr: _Optional[str] = ..., port: _Optional[int] = ..., service: _Optional[str] = ..., seen_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices", "next_page_token")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    next_page_token: str
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ("ip", "zone", "history_page_size", "history_page_token")
    IP_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ip: str
    zone: str
    history_page_size: int
    history_page_token: str
    def __init__(self, ip: _Optional[str] = ..., zone: _Optional[str] = ..., history_page_size: _Optional[int] = ..., history_page_token: _Optional[str] = ...) -> None: ...

class GetDeviceResponse(_message.Message):
    __slots__ = ("device", "history", "history_next_page_token")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    HISTORY_NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    device: Device
    history: _containers.RepeatedCompositeFieldContainer[DeviceChange]
    history_next_page_token: str
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., history: _Optional[_Iterable[_Union[DeviceChange, _Mapping]]] = ..., history_next_page_token: _Optional[str] = ...) -> None: ...

class ListDeviceHistoryRequest(_message.Message):
    __slots__ = ("ip", "zone", "page_size", "page_token")
    IP_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ip: str
    zone: str
    page_size: int
    page_token: str
    def __init__(self, ip: _Optional[str] = ..., zone: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeviceHistoryResponse(_message.Message):
    __slots__ = ("changes", "next_page_token")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[DeviceChange]
    next_page_token: str
    def __init__(self, changes: _Optional[_Iterable[_Union[DeviceChange, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
