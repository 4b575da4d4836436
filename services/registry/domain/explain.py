"""Why a collector is or is not live: evidence in, findings out.

`explain_collector` takes what the registry knows — the collector's record (None when no
collector of that name exists), the handshakes refused under its name or identity, the
server's settings — and the current time, and returns findings an operator can act on,
each with a severity, the time of its evidence and advice. It is pure, so every rule
below is tested without a database.

A collector is *live* when it is online (`collectors.is_online`) and enabled: then it
receives and runs work. The findings come in a fixed order — what the admin decided
(pending, disabled), refused handshakes, the session (live, online or offline, the last
error), then the collector's own health (clock, spool drops, spool backlog, version) —
and the summary is the first of the most severe ones, so a collector that is offline
because its handshakes are refused is summarised by the refusal, not by "offline".
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.registry.domain.authentication import Refusal
from services.registry.domain.collectors import (
    ONLINE_HEARTBEATS,
    Collector,
    CollectorState,
    SpoolStatus,
    is_online,
    online_window,
)
from services.registry.domain.refusals import HandshakeRefusal

CLOCK_SKEW_WARNING_MS = 5_000
"""Beyond this the collector's result times are visibly off; NTP keeps clocks far closer."""

SPOOL_PRESSURE = 0.5
"""Backlog at this fraction of a spool bound is a warning: dropping starts at the bound."""

RECENT = timedelta(days=1)
"""Refusals of other identities newer than this are current; older ones are history."""


class Severity(enum.StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


_RANK = {Severity.OK: 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.ERROR: 3}


class Code(enum.StrEnum):
    """The machine-readable finding codes (`Finding.code` on the wire)."""

    NEVER_CONNECTED = "never_connected"
    PENDING = "pending"
    DISABLED = "disabled"
    AUTH_REFUSED = "auth_refused"
    BOUND_ELSEWHERE = "bound_elsewhere"
    NAME_CONFLICT = "name_conflict"
    PENDING_LIMIT = "pending_limit"
    """Refused on first contact: too many collectors wait as pending."""
    IDENTITY_CHANGED = "identity_changed"
    """Its hello named another name or zone than the one on record."""
    ENROLLMENT_REFUSED = "enrollment_refused"
    """Its hello's enrollment token did not admit it (ADR 0022)."""
    REFUSED = "refused"
    """A refusal reason this version does not know (written by a newer replica)."""
    LIVE = "live"
    ONLINE = "online"
    """Online but not enabled: connected, yet it gets no work."""
    OFFLINE = "offline"
    LAST_ERROR = "last_error"
    CLOCK_SKEW = "clock_skew"
    SPOOL_DROPS = "spool_drops"
    SPOOL_BACKLOG = "spool_backlog"
    VERSION = "version"


_REFUSAL_CODES = {
    Refusal.AUTHENTICATION_FAILED.value: Code.AUTH_REFUSED,
    Refusal.BOUND_TO_OTHER_INSTANCE.value: Code.BOUND_ELSEWHERE,
    Refusal.NAME_CONFLICT.value: Code.NAME_CONFLICT,
    Refusal.PENDING_LIMIT.value: Code.PENDING_LIMIT,
    Refusal.IDENTITY_CHANGED.value: Code.IDENTITY_CHANGED,
    Refusal.ENROLLMENT_REFUSED.value: Code.ENROLLMENT_REFUSED,
}


@dataclass(frozen=True)
class Finding:
    """One piece of evidence; `at` is when it was recorded (None: a current fact)."""

    code: Code
    severity: Severity
    message: str
    at: datetime | None = None
    advice: str = ""


@dataclass(frozen=True)
class Explanation:
    name: str
    live: bool
    summary: str
    findings: tuple[Finding, ...]
    collector: Collector | None


@dataclass(frozen=True)
class ServerSettings:
    """What of the server's configuration the rules need."""

    server_instance: str
    version: str
    heartbeat_interval_seconds: int


def explain_collector(
    name: str,
    collector: Collector | None,
    refusals: Sequence[HandshakeRefusal],
    settings: ServerSettings,
    now: datetime,
) -> Explanation:
    """Findings and a one-line summary for `name`, as of `now`."""
    if collector is None:
        findings = [_never_connected(name, refusals, settings), *_refusal_findings(name, None, refusals, settings, now)]
        return Explanation(name, False, _summary(name, False, findings), tuple(findings), None)
    online = is_online(collector, now, settings.heartbeat_interval_seconds)
    live = online and collector.state is CollectorState.ENABLED
    findings = [
        *_admin_findings(collector, now),
        *_refusal_findings(name, collector, refusals, settings, now),
        *_session_findings(collector, online, live, settings, now, refused={r.message for r in refusals}),
        *_clock_findings(collector),
        *_spool_findings(collector, online, now),
        *_version_findings(collector, settings),
    ]
    return Explanation(name, live, _summary(name, live, findings), tuple(findings), collector)


def _summary(name: str, live: bool, findings: Sequence[Finding]) -> str:
    """The first of the most severe findings, said about `name` in one line."""
    worst = max(findings, key=lambda f: _RANK[f.severity])  # max keeps the first of equals
    if not live:
        return f"{name} is not live: {worst.message}"
    if _RANK[worst.severity] <= _RANK[Severity.INFO]:
        return f"{name} is live"
    return f"{name} is live, but {worst.message}"


# --- what the admin decided ---------------------------------------------------------------
def _never_connected(name: str, refusals: Sequence[HandshakeRefusal], settings: ServerSettings) -> Finding:
    message = "no collector of this name is known to this server (it never connected, or was removed)"
    under_name = [r for r in refusals if r.name == name]
    if under_name:
        count = sum(r.count for r in under_name)
        verb = "was" if count == 1 else "were"
        message += f"; {_plural(count, 'handshake')} under this name {verb} refused (see below)"
    return Finding(
        Code.NEVER_CONNECTED,
        Severity.ERROR,
        message,
        advice="on the collector's machine: check that --server names a gateway of this server "
        f"(server instance {settings.server_instance}), read the collector's log (it says why "
        "each connection attempt failed), and check that no firewall blocks the gateway's port; "
        "`outpostctl collectors list` shows every name this server knows",
    )


def _admin_findings(c: Collector, now: datetime) -> list[Finding]:
    if c.state is CollectorState.PENDING:
        return [
            Finding(
                Code.PENDING,
                Severity.WARNING,
                f"pending since its first contact {_ago(now - c.first_seen)}: waiting for an admin to register it",
                at=c.first_seen,
                advice=f"compare its fingerprint {c.fingerprint} with the one the collector printed at "
                f"install, then `outpostctl collectors register {c.name} --username USER "
                "--password-stdin --enable` with the service credentials it was installed with",
            )
        ]
    if c.state is CollectorState.DISABLED:
        who = c.state_changed_by or "an admin"
        when = "" if c.state_changed_at is None else f" {_ago(now - c.state_changed_at)}"
        why = f": {c.state_reason}" if c.state_reason else ""
        return [
            Finding(
                Code.DISABLED,
                Severity.WARNING,
                f"disabled by {who}{when}{why}",
                at=c.state_changed_at,
                advice=f"it gets no work and its results are refused until `outpostctl collectors enable {c.name}`",
            )
        ]
    return []


# --- refused handshakes -------------------------------------------------------------------
def _refusal_findings(
    name: str,
    collector: Collector | None,
    refusals: Sequence[HandshakeRefusal],
    settings: ServerSettings,
    now: datetime,
) -> list[Finding]:
    """One finding per (reason, this identity or others), aggregated: bounded output.

    Refusals of this very collector (same instance uid) are an error when nothing was
    heard from it since — they are why it is not connected — and history once it got in.
    Refusals of other identities under its name are a warning while recent.
    """
    groups: dict[tuple[str, bool], list[HandshakeRefusal]] = {}
    for refusal in refusals:
        own = collector is not None and refusal.instance_uid == collector.instance_uid
        if collector is None and refusal.name != name:
            continue
        groups.setdefault((refusal.reason, own), []).append(refusal)
    findings = []
    for (reason, own), rows in groups.items():
        latest = max(rows, key=lambda r: r.last_at)
        count = sum(r.count for r in rows)
        identities = len({r.instance_uid for r in rows})
        severity = _refusal_severity(collector, own, latest.last_at, settings, now)
        if own:
            who = "its handshakes"
        elif collector is None:
            who = f"handshakes from {_plural(identities, 'installation')}"
        else:
            who = f"handshakes from {_plural(identities, 'other installation')} (last {latest.fingerprint})"
        message = (
            f"{who} refused {_plural(count, 'time')}, last {_ago(now - latest.last_at)} "
            f"from {latest.remote_address or 'an unknown address'}: {latest.message}"
        )
        code = _REFUSAL_CODES.get(reason, Code.REFUSED)
        accepted_before = collector is not None and own
        advice = _refusal_advice(code, name, settings, accepted_before=accepted_before, message=latest.message)
        findings.append(Finding(code, severity, message, at=latest.last_at, advice=advice))
    order = list(Code)
    return sorted(findings, key=lambda f: (-_RANK[f.severity], order.index(f.code)))


def _refusal_severity(
    collector: Collector | None, own: bool, last_at: datetime, settings: ServerSettings, now: datetime
) -> Severity:
    recent = now - last_at <= RECENT
    if collector is None:
        return Severity.ERROR if recent else Severity.INFO
    if not own:
        return Severity.WARNING if recent else Severity.INFO
    if last_at < collector.last_seen:
        return Severity.INFO  # it got in after: history
    if is_online(collector, now, settings.heartbeat_interval_seconds):
        return Severity.WARNING  # refused while a good session is up: a second copy, or an impostor
    return Severity.ERROR


def _refusal_advice(code: Code, name: str, settings: ServerSettings, *, accepted_before: bool, message: str) -> str:
    if code is Code.PENDING_LIMIT:
        return (
            "this server never accepted it: too many collectors already wait for registration. "
            "`outpostctl collectors list --state pending`, register the ones you expect and remove "
            "the rest (or raise the registry's --max-pending / --max-pending-per-network); the "
            "collector retries by itself and announces itself once there is room"
        )
    if code is Code.ENROLLMENT_REFUSED:
        return (
            "its enrollment token did not admit it (the message says why: unknown, revoked, expired, used up, "
            "another network or zone). `outpostctl enrollment-tokens list --all` shows the tokens; give the "
            "collector a valid one (`outpostctl enrollment-tokens create`) and restart it, or start it without "
            "a token and register it by hand. It waits minutes between attempts, not seconds"
        )
    if code is Code.AUTH_REFUSED and "service password does not match" in message:
        return (
            "its --password-file does not hold the service password on record (ADR 0025): put the "
            f"password set with `outpostctl collectors set-password {name}` (or the one it was registered "
            "with) in that file; the collector reads it again at its next attempt, no restart needed. A "
            "collector that sent no password proof is older than this server: upgrade it"
        )
    if code is Code.AUTH_REFUSED and not accepted_before:
        return _never_accepted_advice(message)
    if code is Code.AUTH_REFUSED:
        return (
            "its key or install credentials do not match what this server accepted before: if the "
            f"collector was reinstalled, `outpostctl collectors remove {name}` and register the new "
            "install; if it was not, another machine is using its identity: check the address"
        )
    if code is Code.BOUND_ELSEWHERE:
        return (
            "it was installed against another Outpost server: point its --server at that server, "
            "or reinstall it with a fresh data directory to bind it to this one "
            f"(server instance {settings.server_instance})"
        )
    if code is Code.NAME_CONFLICT:
        return (
            "see `outpostctl collectors conflicts`: if the collector holding the name was replaced, "
            f"`outpostctl collectors remove {name}` and let the new one announce itself; otherwise "
            "install the newcomer under another name"
        )
    if code is Code.IDENTITY_CHANGED:
        return (
            "a collector's name and zone are decided when it is registered, never by its hello: restart it "
            "with the name and zone on record; to move it, "
            f"`outpostctl collectors remove {name}` and register it again under the new ones"
        )
    return "read the message and the collector's log; upgrading the collector may help"


def _never_accepted_advice(message: str) -> str:
    """A handshake refused before this server ever accepted the installation: no reinstall talk."""
    common = (
        "; after repeated failures a gateway refuses its handshakes for a while (RATE_LIMITED) "
        "and tells it when to try again"
    )
    if "proof did not verify" in message:
        return (
            "this server never accepted it: its signed handshake did not verify. Run the server's "
            "collector version (an older or newer protocol signs differently), make sure nothing "
            "between it and the gateway rewrites traffic (a TLS-intercepting proxy), and if its "
            "key file is damaged reinstall it with a fresh --data-dir" + common
        )
    if "unacceptable" in message or "encryption public key" in message:
        return (
            "this server never accepted it: it sent credentials or keys this server does not accept "
            "(the message says which); upgrade the collector to the server's version, or reinstall "
            "it with a fresh --data-dir" + common
        )
    return (
        "this server never accepted it: read the message and the collector's log, and check the "
        "collector's version against the server's" + common
    )


# --- the session --------------------------------------------------------------------------
def _session_findings(
    c: Collector, online: bool, live: bool, settings: ServerSettings, now: datetime, *, refused: set[str]
) -> list[Finding]:
    """Live, online or offline (and which kind of offline), then the last error when offline.

    A refused handshake is also recorded as the collector's last error; when a refusal
    finding already says it, the last error is not repeated.
    """
    where = _where(c)
    every = _ago(timedelta(seconds=c.check_in_seconds), ago=False)
    polls = f"; it polls, checking in every {every}" if c.check_in_seconds else ""
    if online:
        code, severity = (Code.LIVE, Severity.OK) if live else (Code.ONLINE, Severity.INFO)
        state = "online and enabled" if live else f"online, but {c.state}"
        return [Finding(code, severity, f"{state}: last heard {_ago(now - c.last_seen)} via {where}{polls}")]
    interval = settings.heartbeat_interval_seconds
    severity = Severity.ERROR if c.state is CollectorState.ENABLED else Severity.WARNING
    silent = f"last heard {_ago(now - c.last_seen)} via {where}"
    if not c.connected:
        offline = Finding(
            Code.OFFLINE,
            severity,
            f"offline: its session ended; {silent}",
            at=c.last_seen,
            advice="check on its machine that the collector runs and what its log says, and that it can "
            "reach a gateway (its --server list, DNS, firewall); it reconnects by itself",
        )
    elif c.reported_at is None or now - c.reported_at > online_window(interval):
        reported = "never" if c.reported_at is None else _ago(now - c.reported_at)
        offline = Finding(
            Code.OFFLINE,
            severity,
            f"offline: {silent}; that gateway last reported {reported}",
            at=c.last_seen,
            advice=f"check that gateway {c.gateway_id or '(unknown)'} runs and can reach the registry "
            "(its log, `outpostctl server info`); its collectors move to their next --server once "
            "they notice it is gone",
        )
    else:
        window = int(online_window(interval, c.check_in_seconds).total_seconds())
        if c.check_in_seconds:
            longer = (
                f"its check-in interval plus {ONLINE_HEARTBEATS} heartbeat intervals "
                f"({c.check_in_seconds} + {ONLINE_HEARTBEATS * interval} = {window} s)"
            )
            closes = "the gateway ends a polling session after two check-in intervals without a poll"
        else:
            longer = f"{ONLINE_HEARTBEATS} heartbeat intervals ({window} s)"
            closes = "the gateway closes the session after missed heartbeats"
        offline = Finding(
            Code.OFFLINE,
            severity,
            f"offline: gateway {c.gateway_id} still holds its session but has heard nothing for "
            f"longer than {longer}; {silent}{polls}",
            at=c.last_seen,
            advice="the link or the collector is stuck: check the collector's process and log, and the "
            f"network path to the gateway; {closes}",
        )
    findings = [offline]
    if c.last_error and c.last_error not in refused:
        findings.append(
            Finding(
                Code.LAST_ERROR,
                Severity.WARNING,
                f"last error: {c.last_error}",
                at=c.last_error_at,
                advice="the collector's and the gateway's logs around that time say more",
            )
        )
    return findings


def _where(c: Collector) -> str:
    transport = f"{c.transport} " if c.transport else ""
    address = c.remote_address or "an unknown address"
    return f"gateway {c.gateway_id or '(unknown)'} ({transport}from {address})"


# --- the collector's own health -----------------------------------------------------------
def _clock_findings(c: Collector) -> list[Finding]:
    skew = c.clock_skew_ms
    if skew is None or abs(skew) <= CLOCK_SKEW_WARNING_MS:
        return []
    direction = "ahead of" if skew > 0 else "behind"
    return [
        Finding(
            Code.CLOCK_SKEW,
            Severity.WARNING,
            f"its clock is {abs(skew) / 1000:.1f} s {direction} the gateway's",
            advice="synchronise the collector's clock (NTP, chrony): the times in its results are its own",
        )
    ]


def _spool_findings(c: Collector, online: bool, now: datetime) -> list[Finding]:
    spool = c.spool
    if spool is None:
        return []
    as_of = "" if online else " (as of its last report)"
    findings = []
    if spool.dropped:
        findings.append(
            Finding(
                Code.SPOOL_DROPS,
                Severity.ERROR,
                f"its spool dropped {_plural(spool.dropped, 'result batch', 'result batches')} "
                f"({spool.dropped_full} full, {spool.dropped_expired} expired, {spool.dropped_corrupt} corrupt) "
                f"carrying {_plural(spool.dropped_devices, 'device')}{as_of}",
                advice=_drop_advice(spool),
            )
        )
    if spool.batches:
        findings.append(_backlog(spool, as_of, now))
    return findings


def _backlog(spool: SpoolStatus, as_of: str, now: datetime) -> Finding:
    age = None if spool.oldest_at is None else now - spool.oldest_at
    full = spool.max_bytes > 0 and spool.bytes >= SPOOL_PRESSURE * spool.max_bytes
    max_age = timedelta(seconds=spool.max_age_seconds)
    old = age is not None and spool.max_age_seconds > 0 and age >= SPOOL_PRESSURE * max_age
    size = f"{_mib(spool.bytes)} of {_mib(spool.max_bytes)}" if spool.max_bytes else _mib(spool.bytes)
    oldest = "" if age is None else f", the oldest written {_ago(age)}"
    advice = (
        "they are sent and deleted as a gateway acknowledges them; a backlog that keeps growing "
        "means results are not being committed: check the gateway's log (throttled commits, "
        "database down)"
    )
    if full or old:
        advice += (
            f"; at {_mib(spool.max_bytes)} (--spool-max-bytes) or {_ago(max_age, ago=False)} "
            "(--spool-max-age) the oldest batches are dropped"
        )
    return Finding(
        Code.SPOOL_BACKLOG,
        Severity.WARNING if full or old else Severity.INFO,
        f"{_plural(spool.batches, 'result batch', 'result batches')} ({size}) wait in its spool{oldest}{as_of}",
        at=spool.oldest_at,
        advice=advice,
    )


def _drop_advice(spool: SpoolStatus) -> str:
    steps = []
    if spool.dropped_full:
        steps.append("'full': raise --spool-max-bytes, or fix what keeps results from being acknowledged")
    if spool.dropped_expired:
        steps.append("'expired': raise --spool-max-age to outlast longer outages")
    if spool.dropped_corrupt:
        steps.append("'corrupt': check the collector's disk and file system")
    return "; ".join(steps) + "; the counters never go down: compare with an earlier explain to see if drops go on"


_RELEASE = re.compile(r"^v?(\d+)\.(\d+)")


def _version_findings(c: Collector, settings: ServerSettings) -> list[Finding]:
    """A different release is a warning, a different patch or build only information."""
    if not c.version or not settings.version or c.version == settings.version:
        return []
    mine, theirs = _RELEASE.match(c.version), _RELEASE.match(settings.version)
    major_minor_differ = mine is not None and theirs is not None and mine.groups() != theirs.groups()
    return [
        Finding(
            Code.VERSION,
            Severity.WARNING if major_minor_differ else Severity.INFO,
            f"it runs version {c.version}; the server runs {settings.version}",
            advice="upgrade collectors to the server's version: fixes reach only upgraded collectors",
        )
    ]


# --- wording ------------------------------------------------------------------------------
def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _ago(delta: timedelta, *, ago: bool = True) -> str:
    """A duration for people: "42 s", "12 min", "3 h", "2 d", with " ago" by default."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        text = f"{seconds} s"
    elif seconds < 7200:
        text = f"{seconds // 60} min"
    elif seconds < 172_800:
        text = f"{seconds // 3600} h"
    else:
        text = f"{seconds // 86_400} d"
    return f"{text} ago" if ago else text


def _mib(size: int) -> str:
    return f"{size / 1_048_576:.1f} MiB"
