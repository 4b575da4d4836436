"""`outpostctl access-keys` and `server info` against the real processes, as an operator runs them.

The gateway's cache is observed through its `/metrics` (`outpost_gateway_access_keys`),
the surface an operator has; the audit trail through `outpostctl audit list`.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from outpost.access_key import AccessKey, read_access_key_file
from tests.process_harness import ControlPlane, wait_for


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    directory = tmp_path_factory.mktemp("access-keys")
    control = ControlPlane(directory / "server", f"sqlite+aiosqlite:///{directory / 'outpost.db'}").start()
    try:
        yield control
    finally:
        control.stop()


def cached_keys(plane: ControlPlane) -> int:
    text = urllib.request.urlopen(f"http://{plane.gateway_ready['metrics']}/metrics", timeout=5).read().decode()
    found = re.search(r"^outpost_gateway_access_keys (\S+)$", text, re.MULTILINE)
    assert found, "the gauge is exported"
    return int(float(found.group(1)))


def listed(plane: ControlPlane, *args: str) -> dict[str, dict[str, object]]:
    return {k["name"]: k for k in json.loads(plane.ctl("access-keys", "list", "--json", *args).stdout)}


def test_create_prints_the_key_once_pinning_the_server_key_server_info_shows(plane: ControlPlane) -> None:
    created = json.loads(plane.ctl("access-keys", "create", "site-a", "--zone", "dmz", "--json").stdout)
    assert set(created) >= {"name", "key_id", "zone", "expires_at", "access_key"}
    assert (created["name"], created["zone"], created["expires_at"]) == ("site-a", "dmz", None)
    key = AccessKey.parse(created["access_key"])
    assert key.key_id == created["key_id"] and key.server_public_key is not None

    info = json.loads(plane.ctl("server", "info", "--json").stdout)
    assert info["registry"]["server_key_fingerprint"] == created["server_key_fingerprint"]
    assert info["registry"]["server_key_fingerprint"].startswith("SHA256:")
    people = plane.ctl("server", "info").stdout
    assert created["server_key_fingerprint"] in people

    shown = listed(plane)["site-a"]
    assert (shown["key_id"], shown["zone"], shown["state"], shown["created_by"]) == (
        key.key_id,
        "dmz",
        "valid",
        "bootstrap-admin",
    )


def test_the_human_output_prints_the_key_line_and_a_note(plane: ControlPlane) -> None:
    result = plane.ctl("access-keys", "create", "site-b", "--expires", "30d")
    line = result.stdout.strip().splitlines()[0]
    assert AccessKey.parse(line).key_id
    assert "shown only now" in result.stderr + result.stdout
    table = plane.ctl("access-keys", "list").stdout
    assert "site-b" in table and line not in table


def test_the_gateway_caches_a_new_key_and_drops_a_revoked_one(plane: ControlPlane) -> None:
    before = cached_keys(plane)
    plane.ctl("access-keys", "create", "site-c")
    wait_for(lambda: cached_keys(plane) == before + 1, timeout=10, what="the gateway to cache the new key")
    assert plane.ctl("access-keys", "revoke", "site-c").stdout.startswith("revoked access key 'site-c'")
    wait_for(lambda: cached_keys(plane) == before, timeout=10, what="the gateway to drop the revoked key")
    assert "site-c" not in listed(plane)
    assert listed(plane, "--all")["site-c"]["state"] == "revoked"


def test_an_expired_key_is_listed_as_expired_and_no_longer_cached(plane: ControlPlane) -> None:
    plane.ctl("access-keys", "create", "brief", "--expires", "1s")
    wait_for(lambda: listed(plane)["brief"]["state"] == "expired", timeout=10, what="the key to expire")
    valid = sum(1 for k in listed(plane).values() if k["state"] == "valid")
    wait_for(lambda: cached_keys(plane) == valid, timeout=10, what="the gauge to count only valid keys")


def test_a_revoked_name_can_be_given_to_a_new_key_but_a_live_name_cannot(plane: ControlPlane) -> None:
    first = json.loads(plane.ctl("access-keys", "create", "reused", "--json").stdout)
    taken = plane.ctl("access-keys", "create", "reused", check=False)
    assert taken.returncode == 1 and "exists" in taken.stderr
    plane.ctl("access-keys", "revoke", "reused")
    second = json.loads(plane.ctl("access-keys", "create", "reused", "--json").stdout)
    assert second["key_id"] != first["key_id"]
    assert listed(plane)["reused"]["key_id"] == second["key_id"]


def test_usage_mistakes_and_unknown_names_say_what_is_wrong(plane: ControlPlane) -> None:
    unknown = plane.ctl("access-keys", "revoke", "no-such-key", check=False)
    assert unknown.returncode == 1 and "no access key named 'no-such-key'" in unknown.stderr
    bad = plane.ctl("access-keys", "create", "x", "--expires", "soon", check=False)
    assert bad.returncode != 0 and "--expires" in bad.stderr
    bad_name = plane.ctl("access-keys", "create", "no spaces", check=False)
    assert bad_name.returncode == 1 and "access key name" in bad_name.stderr


def test_create_and_revoke_are_audited_with_the_principal(plane: ControlPlane) -> None:
    plane.ctl("access-keys", "create", "audited")
    plane.ctl("access-keys", "revoke", "audited")
    events = json.loads(plane.ctl("audit", "list", "--json").stdout)
    seen = {(e["method"].rsplit("/", 1)[-1], e["target"], e["principal"], e["outcome"]) for e in events}
    assert ("CreateAccessKey", "audited", "bootstrap-admin", "ok") in seen
    assert ("RevokeAccessKey", "audited", "bootstrap-admin", "ok") in seen


def test_the_bootstrap_key_file_is_private_and_listed_as_bootstrap(plane: ControlPlane) -> None:
    path = plane.access_key_file
    assert path.stat().st_mode & 0o777 == 0o600
    key = read_access_key_file(path)
    assert listed(plane)["bootstrap"]["key_id"] == key.key_id


def test_secrets_are_never_listed_and_not_stored_in_clear(plane: ControlPlane) -> None:
    created = json.loads(plane.ctl("access-keys", "create", "secret-check", "--json").stdout)
    key = AccessKey.parse(created["access_key"])
    listing = plane.ctl("access-keys", "list", "--all", "--json").stdout + plane.ctl("access-keys", "list").stdout
    assert created["access_key"] not in listing
    assert created["access_key"].split(".")[2] not in listing
    for database in Path(plane.workdir).glob("*.db"):
        assert key.secret not in database.read_bytes()
    registry_db = Path(plane.workdir) / "registry.db"
    with sqlite3.connect(registry_db) as db:
        stored = db.execute("SELECT secret FROM access_keys WHERE name = 'secret-check'").fetchone()[0]
    assert key.secret not in stored and len(stored) > len(key.secret)
