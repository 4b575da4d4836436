"""`plan_batch`: device identity within a zone, and what a batch writes."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.inventory.domain.batch import plan_batch
from services.gateway.inventory.domain.device import DeviceRecord, Sighting, new_device_id
from services.gateway.inventory.domain.observation import DeviceObservation, PortObservation, SnmpFacts

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
MAC_A = "aa:bb:cc:00:00:0a"
MAC_B = "aa:bb:cc:00:00:0b"


def sighting(run: str, at: datetime) -> Sighting:
    return Sighting("dmz", "edge-1", run, at, frozenset({22, 80}))


def ids() -> itertools.count[int]:
    return itertools.count(1)


def stored(*observations: DeviceObservation) -> list[DeviceRecord]:
    counter = ids()
    plan = plan_batch([], list(observations), sighting("run-1", T0), new_id=lambda: f"dev-{next(counter)}")
    return plan.devices


def test_new_devices_are_created_once_each_even_when_listed_twice() -> None:
    counter = ids()
    batch = [
        DeviceObservation("10.0.0.1", ports=(PortObservation(22),)),
        DeviceObservation("10.0.0.2"),
        DeviceObservation("10.0.0.1", ports=(PortObservation(80),)),
    ]

    plan = plan_batch([], batch, sighting("run-1", T0), new_id=lambda: f"dev-{next(counter)}")

    assert [(d.id, d.ip) for d in plan.devices] == [("dev-1", "10.0.0.1"), ("dev-2", "10.0.0.2")]
    assert sorted(plan.devices[0].ports) == [("tcp", 22), ("tcp", 80)]
    assert [(c.device_id, c.field) for c in plan.changes] == [
        ("dev-1", "created"),
        ("dev-2", "created"),
        ("dev-1", "port.80"),
    ]
    assert [(i, p.port) for i, p in plan.ports] == [("dev-1", 22), ("dev-1", 80)]
    assert plan.moved == []


def test_a_device_whose_mac_appears_at_a_free_ip_moved() -> None:
    devices = stored(DeviceObservation("10.0.0.1", mac_addresses=(MAC_A,)))

    plan = plan_batch(devices, [DeviceObservation("10.0.0.9", mac_addresses=(MAC_A,))], sighting("run-2", T1))

    assert [(d.id, d.ip) for d in plan.devices] == [("dev-1", "10.0.0.9")]
    assert plan.moved == ["dev-1"]
    assert [(c.field, c.old_value, c.new_value) for c in plan.changes] == [("ip", "10.0.0.1", "10.0.0.9")]


def test_an_snmp_engine_id_identifies_a_device_like_a_mac() -> None:
    devices = stored(DeviceObservation("10.0.0.1", snmp=SnmpFacts(engine_id="80001f8804")))

    moved = DeviceObservation("10.0.0.9", snmp=SnmpFacts(engine_id="0x80001F8804"))
    plan = plan_batch(devices, [moved], sighting("run-2", T1))

    assert [(d.id, d.ip) for d in plan.devices] == [("dev-1", "10.0.0.9")]


def test_a_move_into_an_ip_another_device_holds_falls_back_to_the_ip() -> None:
    devices = stored(
        DeviceObservation("10.0.0.1", mac_addresses=(MAC_A,)),
        DeviceObservation("10.0.0.2", mac_addresses=(MAC_B,)),
    )

    plan = plan_batch(devices, [DeviceObservation("10.0.0.2", mac_addresses=(MAC_A,))], sighting("run-2", T1))

    assert [(d.id, d.ip) for d in plan.devices] == [("dev-2", "10.0.0.2")]
    assert [c.field for c in plan.changes] == ["mac_addresses"]
    assert plan.moved == []


def test_a_mac_the_batch_reports_for_several_ips_identifies_nothing() -> None:
    devices = stored(DeviceObservation("10.0.0.1", mac_addresses=(MAC_A,)))
    router_mac = [
        DeviceObservation("10.0.0.7", mac_addresses=(MAC_A,)),
        DeviceObservation("10.0.0.8", mac_addresses=(MAC_A,)),
    ]

    plan = plan_batch(devices, router_mac, sighting("run-2", T1), new_id=iter(["dev-7", "dev-8"]).__next__)

    assert sorted((d.id, d.ip) for d in plan.devices) == [("dev-7", "10.0.0.7"), ("dev-8", "10.0.0.8")]
    assert plan.moved == []


def test_a_mac_several_stored_devices_carry_identifies_nothing() -> None:
    devices = stored(
        DeviceObservation("10.0.0.1", mac_addresses=(MAC_A,)),
        DeviceObservation("10.0.0.2", mac_addresses=(MAC_A,)),
    )
    assert len(devices) == 2  # each was new at its own IP; the shared MAC decided nothing

    plan = plan_batch(
        devices, [DeviceObservation("10.0.0.3", mac_addresses=(MAC_A,))], sighting("run-2", T1), new_id=lambda: "new"
    )

    assert [(d.id, d.ip) for d in plan.devices] == [("new", "10.0.0.3")]


def test_a_device_seen_at_its_ip_in_this_run_does_not_move_within_the_run() -> None:
    counter = ids()
    batch = [
        DeviceObservation("10.0.0.1"),  # no MAC: matched by IP
        DeviceObservation("10.0.0.9", mac_addresses=(MAC_A,)),
    ]
    devices = stored(DeviceObservation("10.0.0.1", mac_addresses=(MAC_A,)))

    plan = plan_batch(devices, batch, sighting("run-2", T1), new_id=lambda: f"new-{next(counter)}")

    assert sorted((d.id, d.ip) for d in plan.devices) == [("dev-1", "10.0.0.1"), ("new-1", "10.0.0.9")]


def test_another_device_may_take_the_ip_a_moved_one_left_in_the_same_batch() -> None:
    devices = stored(DeviceObservation("10.0.0.1", mac_addresses=(MAC_A,)))
    batch = [
        DeviceObservation("10.0.0.2", mac_addresses=(MAC_A,)),
        DeviceObservation("10.0.0.1", mac_addresses=(MAC_B,)),
    ]

    plan = plan_batch(devices, batch, sighting("run-2", T1), new_id=lambda: "new")

    assert sorted((d.id, d.ip) for d in plan.devices) == [("dev-1", "10.0.0.2"), ("new", "10.0.0.1")]
    assert plan.moved == ["dev-1"]


def test_an_older_observation_from_another_run_is_skipped_as_stale() -> None:
    devices = stored(DeviceObservation("10.0.0.1", hostname="new-name"))

    plan = plan_batch(devices, [DeviceObservation("10.0.0.1", hostname="old")], sighting("run-0", T0 - timedelta(1)))

    assert (plan.devices, plan.changes, plan.ports, plan.stale) == ([], [], [], 1)


def test_only_changed_port_rows_are_written() -> None:
    devices = stored(DeviceObservation("10.0.0.1", ports=(PortObservation(22), PortObservation(443))))
    again = DeviceObservation("10.0.0.1", ports=(PortObservation(22), PortObservation(443)))

    plan = plan_batch(devices, [again], Sighting("dmz", "edge-1", "run-2", T0, frozenset({22, 443})))

    assert plan.ports == []
    assert plan.changes == []
    assert len(plan.devices) == 1  # last seen by run-2


# --- properties -----------------------------------------------------------------------

_observation = st.builds(
    DeviceObservation,
    ip=st.sampled_from([f"10.0.0.{i}" for i in range(1, 6)]),
    mac_addresses=st.lists(st.sampled_from([MAC_A, MAC_B, "aa:bb:cc:00:00:0c"]), max_size=1).map(tuple),
    snmp=st.none() | st.builds(SnmpFacts, engine_id=st.sampled_from(["", "80001f8801", "80001f8802"])),
    ports=st.lists(st.builds(PortObservation, port=st.sampled_from([22, 80])), max_size=2).map(tuple),
)


@settings(max_examples=100, deadline=None)
@given(batches=st.lists(st.lists(_observation, max_size=5), min_size=1, max_size=5))
def test_any_sequence_of_batches_keeps_one_device_per_ip_and_one_created_per_device(
    batches: list[list[DeviceObservation]],
) -> None:
    counter = ids()
    zone: dict[str, DeviceRecord] = {}
    created: dict[str, int] = {}
    for run, observations in enumerate(batches):
        plan = plan_batch(
            list(zone.values()),
            observations,
            sighting(f"run-{run}", T0 + timedelta(hours=run)),
            new_id=lambda: f"dev-{next(counter)}",
        )
        assert set(plan.moved) <= set(zone)
        assert {c.device_id for c in plan.changes} <= {d.id for d in plan.devices}
        zone.update((d.id, d) for d in plan.devices)
        for change in plan.changes:
            if change.field == "created":
                created[change.device_id] = created.get(change.device_id, 0) + 1

        ips = [d.ip for d in zone.values()]
        assert len(ips) == len(set(ips)), "two devices at one IP"
        assert {o.ip for o in observations} <= set(ips), "every observed IP is a device"
        assert set(created) == set(zone) and set(created.values()) <= {1}

    # The same network seen again by a new run: nothing to record (unless the batch itself
    # contradicted itself, listing one IP twice with different findings).
    last = batches[-1]
    again = plan_batch(list(zone.values()), last, sighting("run-again", T0 + timedelta(days=1)))
    if len({o.ip for o in last}) == len(last):
        assert again.changes == []


def test_new_device_ids_are_uuid7_in_creation_order_across_milliseconds() -> None:
    first = [new_device_id() for _ in range(100)]
    time.sleep(0.002)
    later = new_device_id()
    assert all(len(i) == 32 and uuid.UUID(i).version == 7 for i in [*first, later])
    assert len(set(first)) == 100
    assert max(first) < later  # the next millisecond sorts after: new ids go to the right of the indexes
