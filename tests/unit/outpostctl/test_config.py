"""`config`: known keys only, values within their bounds."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from outpostctl.config import SETTINGS, setting_name, setting_value, settings_values
from outpostctl.main import app
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
    ("text", "shown"),
    [
        ("0", "not 0"),
        ("-1", "not -1"),
        ("1441", "not 1441"),
        ("ten", "not 'ten'"),
        ("1.5", "not '1.5'"),
        ("1_0", "not '1_0'"),  # int() reads 10
        ("\uff13", "not '\uff13'"),  # fullwidth 3: int() reads 3
        ("\u00b2", "not '\u00b2'"),  # superscript 2: isdigit() says yes
    ],
)
def test_values_out_of_bounds_say_what_fits(text: str, shown: str) -> None:
    with pytest.raises(ValueError, match=f"takes a whole number of minutes from 1 to 1440, {shown}"):
        setting_value("collector_check_minutes", text)


def test_every_known_key_is_a_settings_field() -> None:
    assert settings_values(Settings(collector_check_minutes=5)) == {"collector_check_minutes": 5}
    assert set(SETTINGS) <= set(Settings.__dataclass_fields__)


@pytest.mark.parametrize("value", ["-1", "1_0", "\uff13"])
def test_the_command_line_refuses_them_with_the_range_not_a_usage_error(value: str) -> None:
    """`-1` is the value (and out of range), not an unknown option "-1"."""
    result = CliRunner().invoke(app, ["config", "set", "collector_check_minutes", value], env={"COLUMNS": "300"})

    assert result.exit_code == 2
    assert "takes a whole number of minutes from 1 to 1440" in result.output
    assert "No such option" not in result.output


@pytest.mark.parametrize("value", ["1_0", "\uff13", "0"])
def test_numeric_options_take_ascii_digits_only(value: str) -> None:
    result = CliRunner().invoke(app, ["jobs", "list", "--limit", value], env={"COLUMNS": "300"})

    assert result.exit_code == 2
    assert "Invalid value for '--limit'" in result.output
