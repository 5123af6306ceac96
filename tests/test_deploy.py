"""deploy/: the systemd units verify where systemd-analyze is available; compose.yaml,
which no container engine here can run, is checked as YAML."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

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


COMPOSE = UNIT.with_name("compose.yaml")
POSTGRES_HOST = "@postgres:5432/"


def _compose() -> dict[str, Any]:
    loaded = YAML(typ="safe").load(COMPOSE.read_text())  # merge keys (<<:) resolved
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_postgres_a_migration_two_daemons_and_the_desk() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "migrate", "newswatch-1", "newswatch-2", "desk"}
    assert services["postgres"]["image"].startswith("docker.io/library/postgres:")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    for name in ("migrate", "newswatch-1", "newswatch-2", "desk"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Containerfile", name
        assert (COMPOSE.parent / service["build"]["context"] / "deploy/Containerfile").exists()
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
        assert {c["target"] for c in service["configs"]} == {
            "/config/newswatch.yaml", "/config/sources.yaml", "/config/watchlists.yaml"}
        # Every one of them points at the postgres service, through the environment.
        assert POSTGRES_HOST in service["environment"]["NEWSWATCH_DATABASE"], name
    assert services["migrate"]["command"] == ["newswatch", "db", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("newswatch-1", "newswatch-2", "desk"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"}, name
    assert "command" not in services["newswatch-1"]  # the image's: newswatch run
    assert services["desk"]["command"][:2] == ["newswatch", "desk"]
    assert services["newswatch-1"]["hostname"] != services["newswatch-2"]["hostname"]
    # Health: PostgreSQL's here; the daemons' and the desk's are the image's /healthz.
    assert "HEALTHCHECK" in UNIT.with_name("Containerfile").read_text()
    assert all(services[n].get("healthcheck", {}).get("disable") is not True
               for n in ("postgres", "newswatch-1", "newswatch-2", "desk"))


def test_compose_keeps_every_password_in_the_environment() -> None:
    reference = re.compile(r"\$\{[A-Z_]+(:[-?][^}]*)?\}")
    for name, service in _compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if "postgresql://" in value:
                # postgresql://USER:${VAR…}@host: the password a reference, never a literal.
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                assert reference.fullmatch(userinfo.partition(":")[2]), (name, key)
            if "PASSWORD" in key or "SECRET" in key:
                assert reference.fullmatch(value), (name, key)
    example = COMPOSE.with_name(".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=example-", example, re.M)  # obviously an example
    assert "example-" not in COMPOSE.read_text()


def test_compose_settings_load_with_the_shipped_sources_and_watchlists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemons' config as compose gives it them: its files, and its environment
    interpolated with deploy/.env.example (the unset values empty, as compose makes them)."""
    from crawler.app.configure import load_checked_config

    compose = _compose()
    for target, config in compose["configs"].items():
        name = "newswatch.yaml" if target == "newswatch" else f"{target}.yaml"
        (tmp_path / name).write_text((COMPOSE.parent / config["file"]).read_text())
    dotenv = dict(line.split("=", 1) for line in
                  COMPOSE.with_name(".env.example").read_text().splitlines()
                  if line and not line.startswith("#"))

    def interpolate(match: re.Match[str]) -> str:
        value = dotenv.get(match[1], "")
        return match[3] if match[2] == ":-" and not value else value

    for key, value in compose["services"]["newswatch-1"]["environment"].items():
        monkeypatch.setenv(key, re.sub(r"\$\{([A-Z_]+)(?:(:[-?])([^}]*))?\}", interpolate,
                                       value))
    config = load_checked_config(tmp_path)
    assert config.database_url == \
        f"postgresql://newswatch:{dotenv['POSTGRES_PASSWORD']}@postgres:5432/newswatch"
    assert dotenv["POSTGRES_PASSWORD"] not in config.database_shown
    assert config.settings.http is not None
    assert config.settings.http.listen == "127.0.0.1:9108"  # the image's HEALTHCHECK
