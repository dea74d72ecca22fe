"""docs/configuration.md is generated from the settings and cannot drift from them."""

from __future__ import annotations

import subprocess
import sys

from exporter.settings import Settings, limits
from tests.polling import scaled
from tests.setting_bounds import bound_numbers
from tests.stack.files import ROOT

SCRIPT = ROOT / "scripts" / "gen_config_doc.py"
DOC = ROOT / "docs" / "configuration.md"
LIMITS_COLUMN = 4  # | Variable | Flag | Default | Limits | ...: cell 0 is before the first bar


def test_configuration_doc_is_current() -> None:
    """The generator's --check passes: the committed document equals what the code describes."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=scaled(60),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_has_its_row() -> None:
    """Each setting's variable, flag and description appear on one row of the document."""
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in DOC.read_text().splitlines()
        if line.startswith("| `")
    }
    for field, info in Settings.model_fields.items():
        assert info.alias in rows, info.alias
        row = rows[info.alias]
        assert info.description is not None
        assert info.description.split("(")[0].strip() in row.replace("&lt;", "<"), field
        if "—" not in row.split("|")[2]:
            assert f"--{field.replace('_', '-')}" in row, field


def test_every_numeric_setting_shows_its_limits() -> None:
    """Each bound a setting is checked against (ge, gt, le, lt) is in its row's Limits column,
    in the words --help uses; a setting without bounds shows none."""
    rows = {
        line.split("|")[1].strip(" `"): [cell.strip() for cell in line.split("|")]
        for line in DOC.read_text().splitlines()
        if line.startswith("| `")
    }
    for field, info in Settings.model_fields.items():
        shown = rows[str(info.alias)][LIMITS_COLUMN]
        assert shown == (limits(field) or "—"), field
        for number in bound_numbers(field):
            assert number in shown, (field, number)
