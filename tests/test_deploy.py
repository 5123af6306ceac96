"""The systemd unit in deploy/ is valid, where systemd-analyze is available."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parent.parent / "deploy" / "newswatch.service"
DESK_UNIT = UNIT.with_name("newswatch-desk.service")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("shipped", [UNIT, DESK_UNIT], ids=lambda p: p.name)
def test_systemd_unit_verifies(tmp_path: Path, shipped: Path) -> None:
    # Verify checks that ExecStart exists: point it at this environment's newswatch.
    here = Path(sys.executable).parent / "newswatch"
    unit = tmp_path / shipped.name
    unit.write_text(shipped.read_text().replace("/opt/newswatch/.venv/bin/newswatch",
                                                str(here)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if shipped == UNIT:
        assert "ExecReload=/bin/kill -HUP $MAINPID" in unit.read_text()
