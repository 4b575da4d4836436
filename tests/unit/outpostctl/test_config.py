"""`config`: known keys only, values within their bounds."""

from __future__ import annotations

import pytest
import typer

from outpostctl.config import SETTINGS, setting_name, setting_value, settings_values
from outpostctl.scheduler_client import Settings


def test_known_keys_also_accept_dashes() -> None:
    assert setting_name("collector_check_minutes") == "collector_check_minutes"
    assert setting_name("Collector-Check-Minutes") == "collector_check_minutes"


def test_an_unknown_key_lists_the_known_ones() -> None:
    with pytest.raises(typer.BadParameter, match="unknown setting 'poll'; known: collector_check_minutes"):
        setting_name("poll")


@pytest.mark.parametrize(("text", "value"), [("1", 1), (" 15 ", 15), ("1440", 1440)])
def test_values_within_bounds_are_taken(text: str, value: int) -> None:
    assert setting_value("collector_check_minutes", text) == value


@pytest.mark.parametrize(
    ("text", "shown"), [("0", "not 0"), ("1441", "not 1441"), ("ten", "not 'ten'"), ("1.5", "not '1.5'")]
)
def test_values_out_of_bounds_say_what_fits(text: str, shown: str) -> None:
    with pytest.raises(ValueError, match=f"takes a whole number of minutes from 1 to 1440, {shown}"):
        setting_value("collector_check_minutes", text)


def test_every_known_key_is_a_settings_field() -> None:
    assert settings_values(Settings(collector_check_minutes=5)) == {"collector_check_minutes": 5}
    assert set(SETTINGS) <= set(Settings.__dataclass_fields__)
