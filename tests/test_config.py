"""Config errors name FILE:LINE:COL and say what to change, all of them at once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from crawler.config import load_config, parse_duration
from crawler.core.errors import ConfigError
from tests.helpers import newswatch, newswatch_process

ROOT = Path(__file__).parent.parent

SETTINGS = """\
database: ../data/nw.db
defaults: {interval: 15m, timeout: 20s, user_agent: "newswatch/test"}
alert_max_age: 48h
channels:
  team-webhook: {type: webhook, url: "${NW_TEST_URL:-}", secret: "${NW_TEST_SECRET:-}"}
"""
SOURCES = """\
sources:
  - {name: BBC Asia, feed: "https://feeds.bbci.co.uk/news/world/asia/rss.xml", interval: 10m}
  - {name: Khaama Press, feed: "https://www.khaama.com/feed/"}
"""
WATCHLISTS = """\
watchlists:
  - name: afghan-opposition
    channels: [team-webhook]
    watch:
      - {name: Ahmad Massoud, aliases: [Ahmad Masoud], exclude: [Ahmad Shah Massoud]}
"""


def write(tmp_path: Path, settings: str = SETTINGS, sources: str = SOURCES,
          watchlists: str = WATCHLISTS) -> Path:
    for name, text in (("newswatch.yaml", settings), ("sources.yaml", sources),
                       ("watchlists.yaml", watchlists)):
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def problems(directory: Path, load: Callable[[Path], object] = load_config) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(directory)
    return [f"{Path(p.file).name}:{p.line}:{p.column}: {p.message}"
            for p in caught.value.problems]


def test_the_shapes_from_the_issue_load(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    assert [s.name for s in config.active_sources()] == ["BBC Asia", "Khaama Press"]
    assert config.active_sources()[0].interval == 600
    assert config.active_sources()[1].interval == 900
    assert config.disabled_channels() == ["team-webhook"]
    assert config.database_path == (tmp_path / "../data/nw.db").resolve()


def test_shipped_config_checks_clean_without_environment() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    result = newswatch_process("--config", str(ROOT / "config"), "check", env=env)
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout and "disabled (no destination)" in result.stdout
    config = load_config(ROOT / "config")
    names = {item.name for w in config.watchlists for item in w.watch}
    for leader in ("Ahmad Massoud", "Atta Mohammad Noor", "Yunus Qanuni", "Hanif Atmar",
                   "Mohammad Mohaqiq", "Abdul Rashid Dostum", "intra-Afghan dialogue"):
        assert leader in names


def test_environment_values_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         ) -> None:
    monkeypatch.setenv("NW_TEST_URL", "https://hooks.example.org/x")
    config = load_config(write(tmp_path))
    channel = config.settings.channels["team-webhook"]
    assert channel.url == "https://hooks.example.org/x" and channel.secret == ""
    assert config.enabled_channels() == {"team-webhook": channel}


def test_missing_environment_variable_is_named(tmp_path: Path) -> None:
    settings = SETTINGS.replace("${NW_TEST_SECRET:-}", "${NW_SURELY_UNSET_VAR}")
    assert problems(write(tmp_path, settings=settings)) == [
        "newswatch.yaml:5:66: environment variable NW_SURELY_UNSET_VAR is not set: set it, "
        "or write ${NW_SURELY_UNSET_VAR:-default} to give a default"]


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    sources = SOURCES.replace("interval: 10m", "intervall: 10m")
    [problem] = problems(write(tmp_path, sources=sources))
    assert problem.startswith("sources.yaml:2:80: unknown key 'intervall': did you mean "
                              "'interval'? (allowed here: ")


def test_unknown_key_in_nested_channel(tmp_path: Path) -> None:
    settings = SETTINGS.replace("secret:", "secrett:")
    [problem] = problems(write(tmp_path, settings=settings))
    assert problem.startswith("newswatch.yaml:5:58: unknown key 'secrett': did you mean "
                              "'secret'?")


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    settings = SETTINGS + "alert_max_age: 12h\n"
    [problem] = problems(write(tmp_path, settings=settings))
    assert problem.startswith("newswatch.yaml:6:1: YAML: found duplicate key 'alert_max_age'")


def test_retry_delays_and_retention_are_bounded(tmp_path: Path) -> None:
    settings = SETTINGS.replace('secret: "${NW_TEST_SECRET:-}"}',
                                'secret: "${NW_TEST_SECRET:-}", retry: {max_delay: 90d}}')
    assert problems(write(tmp_path, settings=settings)) == [
        "newswatch.yaml:5:96: retry: max_delay is at most 30d (an alert later than that is "
        "no longer news)"]
    settings = SETTINGS + "retention: {delivered_alerts: 1d}\nstories: {window: 3d}\n"
    [short] = problems(write(tmp_path, settings=settings))
    assert short.startswith("newswatch.yaml:1:1: retention.delivered_alerts (1d) is shorter "
                            "than stories.window (3d)")


def test_bad_duration(tmp_path: Path) -> None:
    sources = SOURCES.replace("interval: 10m", "interval: 10 minutes")
    [problem] = problems(write(tmp_path, sources=sources))
    assert problem == ("sources.yaml:2:90: interval: bad duration '10 minutes': write a "
                       "number and a unit such as 30s, 15m, 2h or 1d")


def test_duplicate_source_and_watchlist_names(tmp_path: Path) -> None:
    sources = SOURCES + '  - {name: BBC Asia, feed: "https://example.org/feed"}\n'
    watchlists = WATCHLISTS + WATCHLISTS.removeprefix("watchlists:\n")
    assert problems(write(tmp_path, sources=sources, watchlists=watchlists)) == [
        "sources.yaml:4:12: duplicate source name 'BBC Asia' (first defined at line 2): "
        "names must be unique",
        "watchlists.yaml:6:11: duplicate watchlist name 'afghan-opposition' (first defined "
        "at line 2): names must be unique",
    ]


def test_channel_that_does_not_exist(tmp_path: Path) -> None:
    watchlists = WATCHLISTS.replace("[team-webhook]", "[team-webhok]")
    assert problems(write(tmp_path, watchlists=watchlists)) == [
        "watchlists.yaml:3:16: watchlist 'afghan-opposition' names channel 'team-webhok', "
        "which newswatch.yaml does not define: did you mean 'team-webhook'? "
        "(defined: team-webhook)"]


def test_watchlist_sources_must_exist(tmp_path: Path) -> None:
    watchlists = WATCHLISTS.replace("    channels: [team-webhook]\n",
                                    "    channels: [team-webhook]\n"
                                    "    sources: [Khaama Press, BBC Asai]\n")
    assert problems(write(tmp_path, watchlists=watchlists)) == [
        "watchlists.yaml:4:29: watchlist 'afghan-opposition' names source 'BBC Asai', "
        "which sources.yaml does not define: did you mean 'BBC Asia'? "
        "(defined: BBC Asia, Khaama Press)"]
    case = watchlists.replace("BBC Asai", "bbc asia")
    [problem] = problems(write(tmp_path, watchlists=case))
    assert "did you mean 'BBC Asia'?" in problem
    empty = WATCHLISTS.replace("    channels: [team-webhook]\n",
                               "    channels: [team-webhook]\n    sources: []\n")
    [problem] = problems(write(tmp_path, watchlists=empty))
    assert problem.startswith("watchlists.yaml:4:14: sources: ") and "at least 1" in problem


def test_missing_key_bad_url_and_wrong_type(tmp_path: Path) -> None:
    sources = 'sources:\n  - {name: No feed}\n  - {name: Bad, feed: "ftp://x.org/f"}\n'
    settings = SETTINGS.replace("type: webhook", "type: pager")
    assert problems(write(tmp_path, settings=settings, sources=sources)) == [
        "newswatch.yaml:5:24: type: must be 'webhook', 'email' or 'apprise', not 'pager'",
        "sources.yaml:2:5: source 'No feed' needs exactly one of feed, sitemap or crawl "
        "(it has none)",
        "sources.yaml:3:23: feed: 'ftp://x.org/f' is not an http:// or https:// URL",
    ]


def test_yaml_syntax_error_and_other_files_still_checked(tmp_path: Path) -> None:
    sources = "sources:\n  - {name: A, feed: [unclosed\n"
    watchlists = WATCHLISTS.replace("name: Ahmad Massoud", "nam: Ahmad Massoud")
    found = problems(write(tmp_path, sources=sources, watchlists=watchlists))
    assert len(found) == 3
    assert found[0].startswith("sources.yaml:3:1: YAML: ")
    assert found[1] == "watchlists.yaml:5:9: missing required key 'name'"
    assert found[2].startswith("watchlists.yaml:5:10: unknown key 'nam': did you mean 'name'?")


def test_missing_file_and_empty_watch_list(tmp_path: Path) -> None:
    write(tmp_path, watchlists="watchlists:\n  - {name: empty, watch: []}\n")
    (tmp_path / "sources.yaml").unlink()
    assert problems(tmp_path) == [
        "sources.yaml:1:1: file not found: create it (see docs/configuration.md)",
        "watchlists.yaml:2:26: watch: List should have at least 1 item after validation, "
        "not 0",
    ]


def test_check_command_prints_every_problem_and_exits_1(tmp_path: Path) -> None:
    sources = SOURCES.replace("interval: 10m", "interval: soon")
    watchlists = WATCHLISTS.replace("[team-webhook]", "[nowhere]")
    write(tmp_path, sources=sources, watchlists=watchlists)
    result = newswatch("--config", str(tmp_path), "check")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{tmp_path}/sources.yaml:2:90: interval: bad duration")
    assert lines[1].startswith(f"{tmp_path}/watchlists.yaml:3:16: watchlist "
                               "'afghan-opposition' names channel 'nowhere'")
    assert "2 problem(s)" in lines[2]


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("0.5s", 0.5), (90, 90),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "15x", "m", "-5m", "0s", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(text)


def test_sitemap_and_crawl_sources_validate_with_positions(tmp_path: Path) -> None:
    sources = (
        "sources:\n"
        "  - {name: Both, feed: 'http://x.af/f', sitemap: auto}\n"
        "  - {name: Auto, sitemap: auto}\n"
        "  - name: Crawl\n"
        "    crawl: {start: ['http://x.af/'], follow: ['(bad'], max_depth: 9}\n"
        "  - {name: Ok, sitemap: 'http://x.af/news.xml', max_age: 1d, full_text: false}\n"
        "  - {name: Fine, sitemap: auto, site: 'http://x.af/', delay: 0, budget: 2m}\n"
    )
    assert problems(write(tmp_path, sources=sources)) == [
        "sources.yaml:2:5: source 'Both' needs exactly one of feed, sitemap or crawl "
        "(it has feed, sitemap)",
        "sources.yaml:3:5: source 'Auto': sitemap: auto needs site: (the home page whose "
        "robots.txt lists the sitemaps)",
        "sources.yaml:5:47: follow: bad regular expression '(bad': missing ), unterminated "
        "subpattern at position 0",
        "sources.yaml:5:67: max_depth: Input should be less than or equal to 5",
    ]
    fixed = sources.replace("feed: 'http://x.af/f', ", "").replace(
        "sitemap: auto}\n  - {name: Auto", "sitemap: auto, site: 'http://x.af/'}\n"
        "  - {name: Auto").replace("{name: Auto, sitemap: auto}",
                                   "{name: Auto, sitemap: auto, site: 'http://x.af/'}")
    fixed = fixed.replace("'(bad'", "'/news/\\d+'").replace("max_depth: 9", "max_depth: 2")
    config = load_config(write(tmp_path, sources=fixed))
    kinds = {s.name: (s.kind, s.key, s.urls) for s in config.active_sources()}
    assert kinds["Crawl"] == ("crawl", "http://x.af/", ("http://x.af/",))
    assert kinds["Ok"] == ("sitemap", "http://x.af/news.xml", ("http://x.af/news.xml",))
    assert kinds["Fine"] == ("sitemap", "auto:http://x.af/", ("http://x.af/robots.txt",))
    fine = next(s for s in config.active_sources() if s.name == "Fine")
    assert (fine.delay, fine.budget, fine.full_text) == (0.0, 120.0, True)
    ok = next(s for s in config.active_sources() if s.name == "Ok")
    assert (ok.max_age, ok.full_text, ok.delay) == (86400.0, False, 1.0)


def test_bad_watch_item_keys_are_named_with_a_hint(tmp_path: Path) -> None:
    watchlists = """\
watchlists:
  - name: w
    defaults: {fields: [body]}
    watch:
      - name: A
        aliases: [{text: NRF, case: true}, ""]
        any_of: {terms: [x], within: 0}
        none_of: {term: [x]}
      - {name: B, all_of: education}
"""
    assert problems(write(tmp_path, watchlists=watchlists)) == [
        "watchlists.yaml:3:25: fields: must be 'title', 'summary' or 'text'",
        "watchlists.yaml:6:31: unknown key 'case' (allowed here: case_sensitive, text)",
        "watchlists.yaml:6:44: aliases: must be a non-empty text",
        "watchlists.yaml:7:38: within: Input should be greater than or equal to 1",
        "watchlists.yaml:8:18: missing required key 'terms'",
        "watchlists.yaml:8:19: unknown key 'term': did you mean 'terms'? "
        "(allowed here: fields, terms, within)",
        "watchlists.yaml:9:27: all_of: write a list of terms, {terms: [...], within: N}, or "
        "a list of such mappings (each must hold)",
    ]


def test_watch_items_take_the_watchlist_defaults(tmp_path: Path) -> None:
    watchlists = """\
watchlists:
  - name: w
    defaults: {fields: [title], none_of: [football], case_sensitive: true}
    watch:
      - {name: A}
      - {name: B, fields: [text], none_of: {terms: [cricket], within: 3}}
"""
    [a, b] = load_config(write(tmp_path, watchlists=watchlists)).watchlists[0].items()
    assert (a.fields, a.none_of and a.none_of[0].terms, a.case_sensitive) == (
        ["title"], ["football"], True)
    assert (b.fields, b.none_of and b.none_of[0].terms, b.none_of and b.none_of[0].within) == (
        ["text"], ["cricket"], 3)


@pytest.mark.parametrize(("sources", "where", "says"), [
    ("sources:\n\t- {name: A, feed: 'http://a.example/f'}\n", "2:1",
     "tabs cannot indent YAML; use spaces"),
    ("sources:\n  - name: A: B\n    feed: http://a.example/f\n", "2:12",
     "a ':' where none can stand: quote a value that holds ': '"),
    ("sources:\n  - {name: 'A, feed: http://a.example/f}\n", "3:1",
     "a quote is opened but never closed"),
    ("sources: [{name: A, feed: 'http://a.example/f'}\n", "2:1",
     "a list in [ ] is not closed, or lacks a comma"),
    ("sources:\n  - {name: @A, feed: 'http://a.example/f'}\n", "2:12",
     "a value cannot start with this character unquoted; put the value in quotes"),
])
def test_yaml_errors_are_explained_in_plain_words(tmp_path: Path, sources: str, where: str,
                                                  says: str) -> None:
    [found] = problems(write(tmp_path, sources=sources))
    assert found.startswith(f"sources.yaml:{where}: YAML: {says}"), found
    assert "(parser: " in found  # the parser's own words stay, for a search


def test_check_warns_at_context_rules_that_now_read_every_field(tmp_path: Path) -> None:
    """Context rules once read only the item's ``fields``; now the whole article. check
    points at each rule whose reach changed (exit 0): not at a rule with ``within`` (the
    mention's own field, as before) or its own ``fields``, nor at an item reading every
    field."""
    watchlists = """\
watchlists:
  - name: w
    defaults: {fields: [title], none_of: [football]}
    watch:
      - name: A
        none_of: [cricket]
      - {name: B}
      - {name: B2}
      - {name: C, none_of: {terms: [x], within: 3}}
      - {name: D, none_of: {terms: [cricket], fields: [title]}}
      - {name: E, fields: [title, summary, text]}
  - name: v
    watch:
      - {name: F, all_of: [Kabul]}
      - {name: G, fields: [title, summary], any_of: [[x]]}
"""
    write(tmp_path, watchlists=watchlists.replace(", any_of: [[x]]", ""))
    file = tmp_path / "watchlists.yaml"
    said = ("now reads the whole article (title, summary, text), though the item is looked "
            "for only in {0}; earlier releases read only {0}. Give the rule fields: [{0}] "
            "to keep that (see docs/watchlists.md)")
    assert [str(w) for w in load_config(tmp_path).warnings] == [
        f"{file}:6:18: none_of of watch item 'A' " + said.format("title"),
        f"{file}:3:42: none_of of watch items 'B', 'B2' " + said.format("title")]
    result = newswatch("--config", str(tmp_path), "check")
    assert result.returncode == 0, result.stderr
    assert f"{file}:6:18: warning: none_of of watch item 'A' now reads" in result.stderr
    assert problems(write(tmp_path, watchlists=watchlists)) == [
        "watchlists.yaml:15:53: any_of: write a list of terms, {terms: [...], within: N}, or "
        "a list of such mappings (each must hold)"]
