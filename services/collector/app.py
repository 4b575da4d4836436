"""`outpost-collector`: settings from flags and environment -> identity -> supervisor.

Wiring only. Every setting is a flag with an `OUTPOST_COLLECTOR_<KEY>` environment
fallback (a flag wins); the password is read only from `--password-file` or
`OUTPOST_COLLECTOR_PASSWORD`, never from a flag, because a flag shows in `ps`. A bad
setting ends the process at start with exit code 2 and one line saying what to fix;
after start nothing the network does ends it, and SIGTERM/SIGINT end it with code 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

import structlog
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from outpost import sealing
from outpost.access_key import ENVIRONMENT_VARIABLE as ACCESS_KEY_VARIABLE
from outpost.access_key import AccessKey, AccessKeyFormatError, read_access_key_file
from outpost.backoff import Backoff
from outpost.config import HelpFormatter, add_common_flags, env_default, positive
from outpost.enrollment_token import ENVIRONMENT_VARIABLE as ENROLLMENT_TOKEN_VARIABLE
from outpost.enrollment_token import EnrollmentToken, EnrollmentTokenFormatError, read_enrollment_token_file
from outpost.logs import LogFormat, configure_logging
from outpost.process import exit_now, install_shutdown_signals, is_loopback
from outpost.session import handshake
from outpost.version import VERSION
from services.collector import rotate_key_command
from services.collector.clock import WallClock
from services.collector.discovery.host_keys import HostKeyStore
from services.collector.discovery.recognition import ServiceRecognizer
from services.collector.discovery.scan_workers import DEFAULT_SCAN_WORKERS, parse_scan_workers
from services.collector.discovery.service_probes import (
    DEFAULT_INTENSITY,
    DEFAULT_SERVICE_PROBES_FILE,
    ServiceProbesError,
    load_service_probes,
)
from services.collector.domain.server_url import ServerUrl, ServerUrlError, parse_server_url
from services.collector.domain.spool_bounds import parse_byte_size, parse_duration
from services.collector.jobs.runner import JobRunner
from services.collector.jobs.scan import engine_discover
from services.collector.jobs.work import CollectorWork
from services.collector.service_password import ServicePassword
from services.collector.status import StatusFile
from services.collector.store.access_key_store import AccessKeyStore
from services.collector.store.enrollment import RegistrationRecord
from services.collector.store.identity import IdentityError, IdentityStore
from services.collector.store.server_pin import ServerPinError, ServerPinStore
from services.collector.store.spool import DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, Spool, SpoolError
from services.collector.supervisor import CollectorProfile, Supervisor
from services.collector.transport import ClientTls, open_transport
from services.collector.transport.proxy import ProxySettings
from services.collector.transport.sealed import SealedSessions

SERVICE = "collector"
PROG = "outpost-collector"
MAX_IDENTITY_CHARS = 256  # the gateway refuses longer names, zones and usernames
DEFAULT_ZONE = "default"
MIN_SPOOL_BYTES = 1024 * 1024  # room for the largest frame a gateway accepts
STOP_JOBS_TIMEOUT = 10.0  # a scan stuck writing to a full disk must not hold up the exit

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Settings:
    servers: tuple[ServerUrl, ...]
    name: str
    zone: str
    username: str
    password: str = field(repr=False)
    """As read at start; `password_file` (when given) is read again before every connection (ADR 0025)."""
    data_dir: Path
    tls: ClientTls
    log_format: LogFormat
    log_level: str
    handshake_timeout: float
    backoff_initial: float
    backoff_max: float
    status_file: str | None
    access_key: AccessKey
    """The project access key: the sealed session's PSK (ADR 0019), maybe with the server key to pin."""
    spool_max_bytes: int = DEFAULT_MAX_BYTES
    spool_max_age: float = DEFAULT_MAX_AGE
    service_probes_file: str = DEFAULT_SERVICE_PROBES_FILE
    service_intensity: int = DEFAULT_INTENSITY
    service_probes_check: bool = True
    """Compile every fingerprint once at start, in a thread, to log which ones `re` cannot take."""
    scan_workers: int = 1
    clock_offset_seconds: float = 0.0
    legacy_sealing: bool = False
    rotate_key_after: float = 0.0
    """Start an identity key rotation once the key is this old (seconds; 0: never, ADR 0024)."""
    """Advertise no sealing algorithms, as collectors before ADR 0020 did (it still opens both)."""
    enrollment_token: EnrollmentToken | None = None
    """A zone enrollment token (ADR 0022): sent in the Hello until the server registers this collector."""
    proxies: ProxySettings = field(default_factory=ProxySettings)
    """HTTPS_PROXY/HTTP_PROXY/NO_PROXY, read once at start (`transport.proxy`)."""
    password_file: Path | None = None
    """--password-file: re-read at every (re)connection, so a rotated password needs no restart."""


def default_data_dir() -> str:
    """/var/lib/outpost-collector for root (a service), else $XDG_STATE_HOME/outpost-collector."""
    if os.geteuid() == 0:
        return "/var/lib/outpost-collector"
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(state_home, "outpost-collector")


def build_parser() -> argparse.ArgumentParser:
    def env(key: str, default: object = None) -> object:
        return env_default(SERVICE, key, default)

    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=HelpFormatter,
        description="Outpost collector: dials out to a gateway, waits to be registered, takes work. "
        "Behind an HTTP proxy: HTTPS_PROXY (or HTTP_PROXY) = http://[user:password@]host:port tunnels every "
        "transport through it with CONNECT; NO_PROXY lists hosts, .domains, host:port and CIDRs to reach directly.",
        allow_abbrev=False,  # else "--password X" would silently mean "--password-file X"
    )
    parser.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help="gateway address, repeatable for failover: grpc[s]://host[:50061], "
        "ws[s]://host[:8080][/v1/agent], tcp://host[:6600], tls://host[:6600], "
        "http[s]://host[:8080][/v1/poll] (polling, for networks that allow only HTTP) "
        "(env OUTPOST_COLLECTOR_SERVERS, comma-separated)",
    )
    parser.add_argument("--name", default=env("name"), help="display name, unique per server")
    parser.add_argument(
        "--zone",
        default=env("zone"),
        help="the zone it announces (default: 'default'; with an enrollment token: the token's zone)",
    )
    parser.add_argument("--username", default=env("username"), help="service username set at install")
    parser.add_argument(
        "--password-file",
        default=env("password_file"),
        metavar="FILE",
        help="file holding the service password (or env OUTPOST_COLLECTOR_PASSWORD)",
    )
    parser.add_argument(
        "--data-dir",
        default=env("data_dir") or default_data_dir(),
        help="key pair and state (default /var/lib/outpost-collector as root, else $XDG_STATE_HOME/outpost-collector)",
    )
    parser.add_argument("--password", nargs="?", action=_RefusePasswordFlag, help=argparse.SUPPRESS)
    parser.add_argument("--ca-file", default=env("ca_file"), help="PEM CA bundle for TLS URLs")
    parser.add_argument(
        "--handshake-timeout",
        type=positive(float),
        default=env("handshake_timeout", 15.0),
        metavar="SECONDS",
    )
    parser.add_argument(
        "--backoff-initial", type=positive(float), default=env("backoff_initial", 0.5), metavar="SECONDS"
    )
    parser.add_argument("--backoff-max", type=positive(float), default=env("backoff_max", 30.0), metavar="SECONDS")
    parser.add_argument(
        "--status-file",
        default=env("status_file"),
        metavar="PATH",
        help="JSON status rewritten atomically on every state change",
    )
    parser.add_argument(
        "--spool-max-bytes",
        type=_argument(parse_byte_size),
        default=env("spool_max_bytes", str(DEFAULT_MAX_BYTES)),
        metavar="SIZE",
        help="results kept for the server at most, e.g. 256MiB, 1GB or bytes; past it the oldest are "
        "dropped (default 256MiB, env OUTPOST_COLLECTOR_SPOOL_MAX_BYTES)",
    )
    parser.add_argument(
        "--rotate-key-after",
        type=_argument(_duration_or_off),
        default=env("rotate_key_after", "0"),
        metavar="DURATION",
        help="rotate the identity key over the live session once it is this old: seconds, or 90d, ... "
        "(default 0: only `rotate-key`; env OUTPOST_COLLECTOR_ROTATE_KEY_AFTER)",
    )
    parser.add_argument(
        "--spool-max-age",
        type=_argument(parse_duration),
        default=env("spool_max_age", str(int(DEFAULT_MAX_AGE))),
        metavar="DURATION",
        help="results older than this are dropped: seconds, or 12h, 7d, ... "
        "(default 7d, env OUTPOST_COLLECTOR_SPOOL_MAX_AGE)",
    )
    parser.add_argument(
        "--service-probes-file",
        default=env("service_probes_file", DEFAULT_SERVICE_PROBES_FILE),
        metavar="FILE",
        help="nmap's service fingerprints, read at start to name the services on open ports; when the file "
        "is missing, only HTTP, TLS and SSH are recognised (default "
        f"{DEFAULT_SERVICE_PROBES_FILE}, Debian package nmap; env OUTPOST_COLLECTOR_SERVICE_PROBES_FILE)",
    )
    parser.add_argument(
        "--skip-service-probes-check",
        action="store_true",
        default=str(env("skip_service_probes_check", "")).lower() in ("1", "true", "yes"),
        help="do not compile every fingerprint once at start to log how many Python cannot take (about a "
        "second of CPU per start, in a thread; recognition is the same: a run compiles the patterns it "
        "meets); for harnesses that start many collectors (env OUTPOST_COLLECTOR_SKIP_SERVICE_PROBES_CHECK=1)",
    )
    parser.add_argument(
        "--scan-workers",
        type=_argument(parse_scan_workers),
        default=env("scan_workers", DEFAULT_SCAN_WORKERS),
        metavar="N|auto",
        help="processes that run a scan's TCP connects, whole hosts each (1: in the collector process; auto: "
        "one per core; each costs ~20 MiB; default 1, env OUTPOST_COLLECTOR_SCAN_WORKERS)",
    )
    parser.add_argument(
        "--service-intensity",
        type=_intensity,
        default=env("service_intensity", str(DEFAULT_INTENSITY)),
        metavar="0-9",
        help="send nmap's request probes up to this rarity to a port that did not say what it is, as nmap's "
        f"--version-intensity (default {DEFAULT_INTENSITY}; env OUTPOST_COLLECTOR_SERVICE_INTENSITY)",
    )
    parser.add_argument(
        "--clock-offset-seconds",
        type=float,
        default=env("clock_offset_seconds", 0.0),
        metavar="SECONDS",
        help="TEST AID: behave as if the wall clock were this far off (e.g. 3600: one hour ahead), to "
        "exercise the server's clock-skew handling; leave 0 in production "
        "(env OUTPOST_COLLECTOR_CLOCK_OFFSET_SECONDS)",
    )
    parser.add_argument(
        "--legacy-sealing",
        action="store_true",
        default=str(env("legacy_sealing", "")).lower() in ("1", "true", "yes"),
        help="list no sealing algorithms in the hello, as collectors before HPKE did, so credentials come "
        "sealed with the legacy algorithm: for a control plane older than this collector (which would not "
        "verify a hello that lists them) or to pin the legacy algorithm (env OUTPOST_COLLECTOR_LEGACY_SEALING=1)",
    )
    parser.add_argument(
        "--access-key-file",
        metavar="FILE",
        default=env("access_key_file"),
        help="the project access key (outpost-ak1.<id>.<secret>[.<server key>], from `outpostctl access-keys "
        "create`); required: every session is sealed with it (env OUTPOST_COLLECTOR_ACCESS_KEY_FILE names the "
        f"file; {ACCESS_KEY_VARIABLE} holds the key itself)",
    )
    parser.add_argument(
        "--enrollment-token-file",
        metavar="FILE",
        default=env("enrollment_token_file"),
        help="a zone enrollment token (outpost-et1.<id>.<secret>, from `outpostctl enrollment-tokens create`): "
        "the server registers and enables this collector in the token's zone without an admin step; sent only "
        "until the server says it is registered (env OUTPOST_COLLECTOR_ENROLLMENT_TOKEN_FILE names the file; "
        f"{ENROLLMENT_TOKEN_VARIABLE} holds the token itself)",
    )
    add_common_flags(parser, SERVICE)
    return parser


def _intensity(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 <= int(text) <= 9:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 9, got {text!r}")
    return int(text)


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser's ValueError as argparse's own error line (argparse also runs it on defaults)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return convert


class _RefusePasswordFlag(argparse.Action):
    """Refuse `--password` without echoing its value: a flag would show the password in `ps`."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object, **__: object) -> None:
        fail(
            "--password is not accepted (it would show in the process list); "
            "give --password-file FILE or set OUTPOST_COLLECTOR_PASSWORD"
        )


def _duration_or_off(text: str) -> float:
    """A duration as `parse_duration` reads it, or 0 (also `off`): the feature is off."""
    return 0.0 if text.strip().lower() in ("0", "off") else parse_duration(text)


def fail(message: str) -> NoReturn:
    """End the process at start: one line, exit code 2 (as argparse does)."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse_settings(argv: list[str] | None = None) -> Settings:
    """Flags and environment -> Settings; exit 2 with one clear line on a bad setting.

    The password is hashed in `main` once the key pair is loaded: its verifier is bound to
    the public key (ADR 0013); each handshake then proves it (ADR 0025).
    """
    args = build_parser().parse_args(argv)
    urls = args.server or [u for u in (env_default(SERVICE, "servers") or "").split(",") if u.strip()]
    if not urls:
        fail("no gateway address: give --server URL (repeatable) or OUTPOST_COLLECTOR_SERVERS")
    try:
        servers = tuple(parse_server_url(url) for url in urls)
    except ServerUrlError as exc:
        fail(str(exc))
    enrollment_token = _read_enrollment_token(args.enrollment_token_file)
    # With a token the zone is the token's: a collector may leave it out (ADR 0022).
    zone = args.zone if args.zone is not None else ("" if enrollment_token else DEFAULT_ZONE)
    for flag, value in (("--name", args.name), ("--username", args.username), ("--zone", zone)):
        if not value and not (flag == "--zone" and enrollment_token):
            fail(f"{flag} is required (or OUTPOST_COLLECTOR_{flag[2:].upper()})")
        if len(value) > MAX_IDENTITY_CHARS:
            fail(f"{flag} is longer than {MAX_IDENTITY_CHARS} characters")
    if args.log_level.upper() not in logging.getLevelNamesMapping():
        fail(f"invalid --log-level {args.log_level!r}; use debug, info, warning or error")
    if args.backoff_max < args.backoff_initial:
        fail(f"--backoff-max ({args.backoff_max:g}) is below --backoff-initial ({args.backoff_initial:g})")
    if args.spool_max_bytes < MIN_SPOOL_BYTES:
        fail(f"--spool-max-bytes ({args.spool_max_bytes}) is below the minimum of 1MiB ({MIN_SPOOL_BYTES})")
    try:
        tls = ClientTls.from_ca_file(args.ca_file)
    except (OSError, ValueError) as exc:
        fail(f"cannot use --ca-file {args.ca_file}: {exc}")
    try:
        proxies = ProxySettings.from_environ(os.environ)
    except ValueError as exc:
        fail(str(exc))
    return Settings(
        servers=servers,
        name=args.name,
        zone=zone,
        username=args.username,
        password=_read_password(args.password_file),
        data_dir=Path(args.data_dir),
        tls=tls,
        log_format=args.log_format,
        log_level=args.log_level,
        handshake_timeout=float(args.handshake_timeout),
        backoff_initial=float(args.backoff_initial),
        backoff_max=float(args.backoff_max),
        status_file=args.status_file,
        access_key=_read_access_key(args.access_key_file),
        spool_max_bytes=args.spool_max_bytes,
        spool_max_age=args.spool_max_age,
        service_probes_file=args.service_probes_file,
        service_intensity=args.service_intensity,
        service_probes_check=not args.skip_service_probes_check,
        scan_workers=args.scan_workers,
        clock_offset_seconds=float(args.clock_offset_seconds),
        legacy_sealing=bool(args.legacy_sealing),
        rotate_key_after=float(args.rotate_key_after),
        enrollment_token=enrollment_token,
        proxies=proxies,
        password_file=Path(args.password_file) if args.password_file else None,
    )


def _log_server_routes(settings: Settings) -> None:
    """Which proxy each server is reached through (never the proxy's credentials), once at start."""
    for server in settings.servers:
        proxy = settings.proxies.route(server.host, server.port)
        if proxy is not None:
            log.info("server_route_chosen", server=str(server), proxy=proxy.display, variable=settings.proxies.variable)
        elif settings.proxies.proxy is not None:
            log.info("server_route_chosen", server=str(server), proxy=None, reason="NO_PROXY")
        else:
            log.info("server_route_chosen", server=str(server), proxy=None)


def _read_enrollment_token(path: str | None) -> EnrollmentToken | None:
    """The enrollment token from the file, else from the environment (taken out of it); None without one."""
    if path:
        try:
            return read_enrollment_token_file(Path(path))
        except (OSError, UnicodeDecodeError, EnrollmentTokenFormatError) as exc:
            fail(f"cannot use --enrollment-token-file {path}: {exc}")
    text = os.environ.pop(ENROLLMENT_TOKEN_VARIABLE, "")  # child processes never inherit it
    if not text:
        return None
    try:
        return EnrollmentToken.parse(text)
    except EnrollmentTokenFormatError as exc:
        fail(f"cannot use {ENROLLMENT_TOKEN_VARIABLE}: {exc}")


def _read_access_key(access_key_file: str | None) -> AccessKey:
    """The access key from the file, else from the environment (taken out of it); exit 2 without one."""
    if access_key_file:
        try:
            return read_access_key_file(Path(access_key_file))
        except (OSError, UnicodeDecodeError, AccessKeyFormatError) as exc:
            fail(f"cannot use --access-key-file {access_key_file}: {exc}")
    text = os.environ.pop(ACCESS_KEY_VARIABLE, "")  # child processes never inherit it
    if not text:
        fail(
            f"no access key: give --access-key-file FILE or set {ACCESS_KEY_VARIABLE} (the admin creates one with "
            "`outpostctl access-keys create NAME`); every session with the gateway is sealed with it"
        )
    try:
        return AccessKey.parse(text)
    except AccessKeyFormatError as exc:
        fail(f"cannot use {ACCESS_KEY_VARIABLE}: {exc}")


def _read_password(password_file: str | None) -> str:
    if password_file:
        try:
            text = Path(password_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read --password-file {password_file}: {exc}")
        password = text.removesuffix("\n").removesuffix("\r")
        where = f"--password-file {password_file}"
    else:
        # Taken out of the environment so child processes never inherit it.
        password = os.environ.pop("OUTPOST_COLLECTOR_PASSWORD", "")
        where = "OUTPOST_COLLECTOR_PASSWORD"
        if not password:
            fail("no service password: give --password-file FILE or set OUTPOST_COLLECTOR_PASSWORD")
    if not password:
        fail(f"the service password in {where} is empty")
    return password


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [rotate_key_command.COMMAND]:
        raise SystemExit(rotate_key_command.run(argv[1:], PROG, default_data_dir()))
    settings = parse_settings(argv)
    configure_logging(settings.log_format, settings.log_level, service=SERVICE)
    store = IdentityStore(settings.data_dir)
    try:
        identity = store.load_or_create()
    except IdentityError as exc:
        fail(str(exc))
    # The password stays in memory (and its file is re-read before every connection): each
    # handshake proves it (ADR 0025). Only its verifier and proofs leave the collector.
    password = ServicePassword(
        username=settings.username, password=settings.password, password_file=settings.password_file
    )
    verifier = password.verifier(identity.public_key)
    profile = CollectorProfile(
        settings.name,
        settings.zone,
        settings.username,
        verifier,
        sealing_algorithms=() if settings.legacy_sealing else sealing.OPENS,
        enrollment_token=settings.enrollment_token.encode() if settings.enrollment_token else "",
    )
    settings = replace(settings, password="")
    structlog.contextvars.bind_contextvars(collector=settings.name)
    log.info(
        "collector_started",
        name=settings.name,
        zone=settings.zone,
        fingerprint=identity.fingerprint,
        instance_uid=identity.instance_uid,
        version=VERSION,
        servers=[str(s) for s in settings.servers],
        data_dir=str(settings.data_dir),
        new_identity=store.created,
        bound_server_instance=identity.bound_server_instance,
        sealing_algorithms=list(profile.sealing_algorithms),
    )
    _warn_about_setup(settings, store)
    _log_server_routes(settings)
    clock = WallClock(settings.clock_offset_seconds)
    try:
        spool = Spool.open(
            settings.data_dir, max_bytes=settings.spool_max_bytes, max_age=settings.spool_max_age, wall_clock=clock
        )
    except SpoolError as exc:
        fail(str(exc))
    status = StatusFile(settings.status_file, identity.instance_uid, identity.fingerprint, spool=spool.status)
    status.write("disconnected")
    sealed = SealedSessions(
        settings.access_key,
        identity.noise_private_bytes,
        ServerPinStore(settings.data_dir),
        stored=AccessKeyStore(settings.data_dir),
    )
    _log_server_pin(sealed)
    supervisor = Supervisor(
        servers=settings.servers,
        profile=profile,
        identity=identity,
        identity_store=store,
        status=status,
        open_transport=lambda url: open_transport(
            url, settings.tls, sealed=True, proxy=settings.proxies.route(url.host, url.port)
        ),
        backoff=Backoff(settings.backoff_initial, settings.backoff_max),
        handshake_timeout=settings.handshake_timeout,
        wall_clock=clock,
        sealed=sealed,
        registration=RegistrationRecord(settings.data_dir),
        rotate_key_after=settings.rotate_key_after,
        password=password,
    )
    host_keys = HostKeyStore(settings.data_dir / "known_hosts")
    recognizer = load_recognizer(
        settings.service_probes_file, settings.service_intensity, check=settings.service_probes_check
    )
    try:
        asyncio.run(
            _serve(
                supervisor,
                spool,
                host_keys,
                identity.encryption_key,
                recognizer,
                clock=clock,
                scan_workers=settings.scan_workers,
            )
        )
    finally:
        spool.close()
    log.info("collector_stopped")
    exit_now(0)  # the spool is closed: no interpreter teardown to wait for


async def _serve(
    supervisor: Supervisor,
    spool: Spool,
    host_keys: HostKeyStore,
    encryption_key: X25519PrivateKey,
    recognizer: ServiceRecognizer | None,
    *,
    clock: WallClock,
    scan_workers: int = 1,
) -> None:
    """Run the supervisor until SIGTERM/SIGINT, then stop the jobs, say goodbye and stop."""
    stop = install_shutdown_signals()
    discover = engine_discover(host_keys, encryption_key, recognizer, clock, scan_workers=scan_workers)
    runner = JobRunner(spool, discover, wall_clock=clock)
    supervisor.work = CollectorWork(spool, runner)
    running = asyncio.create_task(supervisor.run(), name="collector-supervisor")
    stopping = asyncio.create_task(stop.wait(), name="collector-stop")
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not running.done():
        log.info("collector_stopping", running_jobs=len(runner.running))
        try:
            async with asyncio.timeout(STOP_JOBS_TIMEOUT):
                await runner.stop()
        except TimeoutError:
            log.error("jobs_stop_timed_out", timeout=STOP_JOBS_TIMEOUT, running_jobs=len(runner.running))
        running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


def load_recognizer(path: str, intensity: int, *, check: bool = True) -> ServiceRecognizer | None:
    """nmap's fingerprints, or None (one warning) when the file is missing: HTTP/TLS/SSH only.

    A file that is there but malformed ends the process: it is the operator's to fix.
    Which patterns Python's `re` cannot take is found by compiling them all once in a
    thread (~1.2 s of CPU) and logged once, unless `check` is off; a run compiles only the
    patterns it meets.
    """
    started = time.monotonic()
    try:
        database = load_service_probes(path)
    except FileNotFoundError:
        log.warning(
            "service_probes_missing",
            path=path,
            note="service recognition is off: only HTTP, TLS and SSH are recognised; install nmap's data "
            "file (Debian package nmap) or give --service-probes-file",
        )
        return None
    except (OSError, ServiceProbesError) as exc:
        fail(f"cannot use --service-probes-file {path}: {exc}")
    log.info(
        "service_probes_loaded",
        path=path,
        probes=len(database.probes),
        patterns=database.pattern_count,
        intensity=intensity,
        seconds=round(time.monotonic() - started, 3),
    )

    def check_all() -> None:
        try:
            report = database.check_patterns()
        except Exception:  # a thread's boundary: log it, recognition still works lazily
            log.exception("service_probes_check_failed", path=path)
            return
        log.info(
            "service_probes_checked",
            path=path,
            patterns=report.patterns,
            not_compiled=report.failed,
            first_not_compiled=list(report.first_failures),
        )

    if check:
        threading.Thread(target=check_all, name="service-probes-check", daemon=True).start()
    return ServiceRecognizer(database, intensity)


def _log_server_pin(sealed: SealedSessions) -> None:
    """Say at start which server key this collector will insist on (or that it will learn one)."""
    try:
        pinned = sealed.server_key()
    except ServerPinError as exc:
        fail(str(exc))
    if pinned is None:
        log.warning(
            "server_key_not_pinned",
            access_key_id=sealed.access_key.key_id,
            note="first contact: the server's key is trusted on first use and pinned once the server proves "
            "the access key; an access key that carries the server key avoids this",
        )
        return
    source = "access_key" if sealed.access_key.server_public_key is not None else str(sealed.pins.path)
    log.info("server_key_pinned_from", source=source, fingerprint=handshake.fingerprint(pinned))
    presented = sealed.access_key_for_connection()
    if presented.key_id != sealed.access_key.key_id and sealed.stored is not None:
        log.info(
            "access_key_from_data_dir",
            key_id=presented.key_id,
            configured_key_id=sealed.access_key.key_id,
            path=str(sealed.stored.path),
            note="a key the server handed over after a rotation; the configured one is used only if it is refused",
        )


def _warn_about_setup(settings: Settings, store: IdentityStore) -> None:
    if settings.clock_offset_seconds:
        log.warning(
            "clock_offset_set",
            clock_offset_seconds=settings.clock_offset_seconds,
            advice="a test aid: unset --clock-offset-seconds outside tests",
        )
    if store.key_permissions_open:
        log.warning("private_key_permissions_too_open", path=str(store.key_path), advice="chmod 600")
    for server in settings.servers:
        if not server.tls and not is_loopback(server.host):
            log.warning(
                "plaintext_server",
                server=str(server),
                advice="use grpcs://, wss://, tls:// or https:// outside local development",
            )
    if settings.tls.ca_file and not any(s.tls for s in settings.servers):
        log.warning("ca_file_unused", ca_file=settings.tls.ca_file)


if __name__ == "__main__":
    main()
