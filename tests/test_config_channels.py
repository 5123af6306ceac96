"""Channel config: the three types, digests, the operator, templates, each error placed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from crawler.app.configure import load_checked_config
from crawler.config import AppriseChannel, EmailChannel, WebhookChannel, load_config
from tests.helpers import newswatch
from tests.test_config import SOURCES, WATCHLISTS, problems, write

CHANNELS = """\
database: ../data/nw.db
timezone: Asia/Kabul
operator: ops
channels:
  team-webhook: {type: webhook, url: "http://127.0.0.1:9/hook"}
  desk:
    type: email
    to: desk@example.org
    from: newswatch@example.org
    smtp: {host: smtp.example.org, username: nw, password: "${NW_TEST_SMTP_PW:-pw}"}
    digest: "daily at 08:00"
    max_per_hour: 10
  ops:
    type: apprise
    urls: ["json://127.0.0.1:9/notify", ""]
"""


def test_the_three_channel_types_load_with_their_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, settings=CHANNELS))
    channels = config.settings.channels
    assert isinstance(channels["team-webhook"], WebhookChannel)
    desk = channels["desk"]
    assert isinstance(desk, EmailChannel)
    assert (desk.to, desk.sender, desk.smtp.security, desk.smtp.effective_port) == (
        ["desk@example.org"], "newswatch@example.org", "starttls", 587)
    assert (desk.smtp.password, desk.digest, desk.max_per_hour) == ("pw", "daily at 08:00", 10)
    assert isinstance(channels["ops"], AppriseChannel) and channels["ops"].enabled
    assert config.settings.timezone == "Asia/Kabul" and config.settings.operator == "ops"
    assert sorted(config.enabled_channels()) == ["desk", "ops", "team-webhook"]


def test_channel_errors_are_placed_and_explained(tmp_path: Path) -> None:
    settings = """\
timezone: Mars/Olympus
operator: pager
channels:
  desk:
    type: email
    to: [not-an-address]
    from: nw@example.org
    smtp: {host: smtp.example.org, securty: tls}
    digest: "daily at 25:00"
  hook: {type: webhook, url: "http://127.0.0.1:9/", max_per_hour: 0}
  chat: {type: apprise, urls: ["nonsense://x"]}
  fax: {type: fax}
"""
    watchlists = WATCHLISTS.replace("[team-webhook]", "[desk]")
    found = problems(write(tmp_path, settings=settings, sources=SOURCES,
                           watchlists=watchlists))
    assert found == [
        "newswatch.yaml:1:11: timezone: unknown time zone 'Mars/Olympus': use an IANA name "
        "such as Asia/Kabul or UTC",
        "newswatch.yaml:6:9: to: 'not-an-address' is not an email address",
        "newswatch.yaml:8:36: unknown key 'securty': did you mean 'security'? (allowed here: "
        "ca_file, host, password, port, security, username)",
        "newswatch.yaml:9:13: digest: bad digest 'daily at 25:00': no such time of day",
        "newswatch.yaml:10:67: max_per_hour: Input should be greater than or equal to 1",
        "newswatch.yaml:12:15: type: must be 'webhook', 'email' or 'apprise', not 'fax'",
    ]


def test_operator_must_name_a_channel(tmp_path: Path) -> None:
    settings = CHANNELS.replace("operator: ops", "operator: opps")
    assert problems(write(tmp_path, settings=settings)) == [
        "newswatch.yaml:3:11: operator: channel 'opps' is not defined (defined: desk, ops, "
        "team-webhook)"]


def test_apprise_url_that_apprise_does_not_know_is_refused(tmp_path: Path) -> None:
    settings = 'channels:\n  chat: {type: apprise, urls: ["json://127.0.0.1:9/x", "nope://x"]}\n'
    directory = write(tmp_path, settings=settings, watchlists="watchlists: []\n")
    assert problems(directory, load_checked_config) == [
        "newswatch.yaml:2:56: urls: Apprise does not understand URL number 2"]


def test_alert_checks_are_reported_with_the_config_problems_at_once(tmp_path: Path) -> None:
    settings = 'channels:\n  chat: {type: apprise, urls: ["nope://x"]}\n'
    watchlists = WATCHLISTS.replace("[team-webhook]", "[chat, pager]")
    assert problems(write(tmp_path, settings=settings, watchlists=watchlists),
                    load_checked_config) == [
        "newswatch.yaml:2:32: urls: Apprise does not understand URL number 1",
        "watchlists.yaml:3:22: watchlist 'afghan-opposition' names channel 'pager', which "
        "newswatch.yaml does not define (defined: chat)"]


def test_template_errors_name_the_template_file_and_line(tmp_path: Path) -> None:
    settings = CHANNELS.replace('    max_per_hour: 10\n', '    max_per_hour: 10\n'
                                '    templates: {subject: subject.j2, html: body.html}\n')
    write(tmp_path, settings=settings)
    (tmp_path / "subject.j2").write_text("{{ count }} alerts\n{% if kind %}\n{{ oops( }}\n"
                                         "{% endif %}\n")
    (tmp_path / "body.html").write_text("<p>\n{{ alerts[0].article.titel }}\n</p>\n")
    assert problems(tmp_path, load_checked_config) == [
        "body.html:2:1: template error: 'dict object' has no attribute 'titel'",
        "subject.j2:3:1: template syntax error: unexpected '}', expected ')'",
    ]


def test_digest_forms(tmp_path: Path) -> None:
    for good in ("hourly", "daily at 8:05", "*/15 6-22 * * mon-fri", "0 9 * * 0"):
        settings = CHANNELS.replace('"daily at 08:00"', f'"{good}"')
        load_config(write(tmp_path, settings=settings))
    settings = CHANNELS.replace('"daily at 08:00"', '"weekly"')
    assert problems(write(tmp_path, settings=settings))[0].startswith(
        "newswatch.yaml:11:13: digest: bad digest 'weekly': write hourly, \"daily at 08:00\" "
        "or a cron expression")


def test_digest_cron_errors_are_explained(tmp_path: Path) -> None:
    for bad, why in (("0 25 * * *", "out of range"), ("H 8 * * *", "H and R"),
                     ("0 8 * * someday", "not a valid cron expression")):
        settings = CHANNELS.replace('"daily at 08:00"', f'"{bad}"')
        [found] = problems(write(tmp_path, settings=settings))
        assert found.startswith(f"newswatch.yaml:11:13: digest: bad digest '{bad}': ")
        assert why in found


def test_check_warns_at_each_digest_restricting_both_day_and_weekday(tmp_path: Path) -> None:
    """Their meaning changed to cron's (either day fires): check points at them, exit 0."""
    settings = CHANNELS.replace('"daily at 08:00"', '"0 8 1 * 1"').replace(
        'urls: ["json://127.0.0.1:9/notify", ""]',
        'urls: ["json://127.0.0.1:9/notify"]\n    digest: "0 9 */2 * fri"')
    write(tmp_path, settings=settings)
    assert [str(w) for w in load_config(tmp_path).warnings] == [
        f"{tmp_path / 'newswatch.yaml'}:11:13: digest: '0 8 1 * 1' restricts both the day of "
        "the month and the weekday, so it fires on a day matching either (as in cron); "
        "earlier releases needed both. Write * in one of them if you meant only the other",
        f"{tmp_path / 'newswatch.yaml'}:16:13: digest: '0 9 */2 * fri' restricts both the "
        "day of the month and the weekday, so it fires on a day matching either (as in "
        "cron); earlier releases needed both. Write * in one of them if you meant only the "
        "other"]
    result = newswatch("--config", str(tmp_path), "check")
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout and "warning" not in result.stdout
    assert result.stderr.count(": warning: digest: ") == 2
    assert f"{tmp_path / 'newswatch.yaml'}:11:13: warning: digest: '0 8 1 * 1'" in result.stderr
    checked = newswatch("--config", str(tmp_path), "check", "--json")
    assert json.loads(checked.stdout)["warnings"] == \
        [str(w) for w in load_config(tmp_path).warnings]
    # the shipped forms warn about nothing
    write(tmp_path, settings=CHANNELS)
    assert load_config(tmp_path).warnings == ()


def test_check_reports_a_template_error_at_its_line_and_exits_1(tmp_path: Path) -> None:
    settings = CHANNELS.replace('    max_per_hour: 10\n', '    max_per_hour: 10\n'
                                '    templates: {text: body.txt}\n')
    write(tmp_path, settings=settings)
    (tmp_path / "body.txt").write_text("{% for a in alerts %}\n{{ a.article.title }}\n")
    result = newswatch("--config", str(tmp_path), "check")
    assert result.returncode == 1
    assert f"{tmp_path / 'body.txt'}:2:1: template syntax error: Unexpected end of " \
           "template." in result.stderr


def test_loading_a_config_imports_neither_alerts_nor_apprise_nor_trafilatura() -> None:
    """The config layer is the bottom of the app: what a config check needs from the
    layers above comes in through ``load_config(checks=...)``, never as an import."""
    code = ("import sys; from crawler.config import load_config; load_config('config'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'alerts', 'apprise', 'trafilatura'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).parent.parent, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
