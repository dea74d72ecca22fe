"""docs/configuration.md is generated from the settings and cannot drift from them."""

from __future__ import annotations

import subprocess
import sys

from exporter.settings import Settings
from tests.servers import scaled
from tests.stack.files import ROOT

SCRIPT = ROOT / "scripts" / "gen_config_doc.py"
DOC = ROOT / "docs" / "configuration.md"


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
