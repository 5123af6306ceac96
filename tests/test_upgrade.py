"""A config directory from the previous release keeps working unedited.

``tests/fixtures/release-0.1/config`` is the shipped ``config/`` of release 0.1, frozen.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from crawler.config import load_config
from tests.helpers import newswatch

RELEASE_0_1 = Path(__file__).parent / "fixtures" / "release-0.1"


def copy_config(tmp_path: Path) -> Path:
    """A writable copy, so its relative database path lands in tmp_path."""
    config = tmp_path / "config"
    shutil.copytree(RELEASE_0_1 / "config", config)
    return config


def test_the_previous_release_config_loads_unchanged(tmp_path: Path) -> None:
    config = load_config(copy_config(tmp_path))
    assert len(config.sources) >= 10
    assert {w.name for w in config.watchlists} >= {"afghan-opposition"}
    assert config.database_path == tmp_path / "data" / "newswatch.db"


def test_the_previous_release_config_passes_check_and_still_matches(tmp_path: Path) -> None:
    config = copy_config(tmp_path)
    checked = newswatch("--config", str(config), "check", "--json")
    assert checked.returncode == 0, checked.stderr
    matched = newswatch("--config", str(config), "match", "--json", "--text",
                        "Ahmad Massoud and Atta Mohammad Noor met in Dushanbe.")
    assert matched.returncode == 0, matched.stderr
    watches = {m["watch"] for m in json.loads(matched.stdout)["matches"]}
    assert {"Ahmad Massoud", "Atta Mohammad Noor"} <= watches


def test_the_previous_release_config_and_database_work_together(tmp_path: Path) -> None:
    """Release 0.1's config with a database of its schema (v6): every read command works,
    and what was stored is still shown."""
    config = copy_config(tmp_path)
    (tmp_path / "data").mkdir()
    shutil.copy(Path(__file__).parent / "fixtures" / "store" / "v6.db",
                tmp_path / "data" / "newswatch.db")
    shown = {}
    for command in ("matches", "stories", "alerts", "status"):
        result = newswatch("--config", str(config), command, "--json")
        assert result.returncode == 0, (command, result.stderr)
        shown[command] = json.loads(result.stdout)
    assert shown["matches"] and shown["alerts"]
    assert all(row["watchlist"] for row in shown["matches"])
