"""A CLI that guides (issue 15): `cjm validate`, "did you mean", a folder given as a path, empty files said, the
version, and one line with an exit code for a bad schedule or a typo'd path step.

Counts are checked against the hand-made events below, where every figure is known.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml as pyyaml

from cjm_analytics import __version__
from cjm_analytics.cli import build_parser, main
from cjm_analytics.config import Config
from cjm_analytics.errors import ConfigError
from cjm_analytics.suggest import did_you_mean
from cjm_analytics.validate import validate
from tests.fixtures import STAGES, WEB_COLUMNS, make_config, run_steps, write_csv

ROOT = Path(__file__).resolve().parent.parent

# 3 customers; landing x2, product_view x1, add_to_cart x1, order x1, newsletter x1 (no stage); one row rejected
# (no event name). A property `page` on two rows.
EVENTS = """
    event_id,anonymous_id,user_id,event,ts,channel,page
    1,a1,,landing,2026-10-31T10:00:00Z,ads,/
    2,a1,u1,add_to_cart,2026-11-01T10:05:00Z,,/cart
    3,a2,,product_view,2026-11-01T11:00:00Z,email,
    4,,u3,order,2026-11-02T09:00:00Z,,
    5,a3,,landing,2026-11-02T09:30:00Z,ads,
    6,a3,,newsletter,2026-11-02T09:31:00Z,,
    7,a4,,,2026-11-02T09:32:00Z,,
"""


def project(tmp_path: Path, **overrides: object) -> Config:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    return make_config(tmp_path, **overrides)


def write_yaml(tmp_path: Path, stages: list[dict[str, object]]) -> Path:
    """The config as a user writes it, for the command line."""
    data = {"warehouse": "warehouse/cjm.duckdb", "reports": "reports", "goal": "buy", "stages": stages,
            "sources": [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS}]}
    path = tmp_path / "cjm.yaml"
    path.write_text(pyyaml.safe_dump(data))
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cjm: error: "), err
    return lines[0]


def test_did_you_mean_picks_the_close_name_or_none() -> None:
    assert did_you_mean("ad_clik", ["ad_click", "add_to_cart"]) == " (did you mean 'ad_click'?)"
    assert did_you_mean("Purchase", ["purchase"]) == " (did you mean 'purchase'?)"
    assert did_you_mean("xyz", ["goal", "stages"]) == ""


def test_validate_counts_what_each_rule_matches_and_writes_no_warehouse(tmp_path: Path) -> None:
    config = project(tmp_path, stages=[*STAGES, {"name": "loyal", "events": ["newsletter", "renewal"]}])
    found = validate(config)
    assert not config.warehouse.exists() and not config.reports.exists()
    matched = {(r.stage, r.pattern): int(r.events_matched) for r in found.rules.itertuples()}
    assert matched == {("browse", "product_*"): 1, ("browse", "landing"): 2, ("cart", "add_to_cart"): 1,
                       ("buy", "order"): 1, ("loyal", "newsletter"): 1, ("loyal", "renewal"): 0}
    [file] = found.files
    assert (file.rows_read, file.rows_loaded, file.rows_rejected) == (7, 6, 1)
    web = found.sources.iloc[0]
    assert (int(web["events"]), int(web["with_customer_id"]), int(web["with_channel"])) == (6, 2, 3)
    assert list(web["property_columns"]) == ["page"]
    assert found.journey_count == 4  # u1 (a1), a2, u3, a3
    assert [str(f) for f in found.findings] == [
        "warning: sources[0] (web): 1 row(s) would be rejected: missing event_name (first: events.csv row 7)",
        "warning: stages[3].events[1]: 'renewal' matches no event",
    ]


def test_a_misspelled_event_is_a_stage_that_matches_nothing_an_error_with_a_suggestion(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stages = [dict(s) for s in STAGES]
    stages[1] = {"name": "cart", "events": ["add_to_crat"]}
    config = project(tmp_path, stages=stages, analysis={"support_events": ["newsleter"]})
    found = validate(config)
    assert [str(f) for f in found.findings[1:]] == [
        "warning: stages[1].events[0]: 'add_to_crat' matches no event (did you mean 'add_to_cart'?)",
        "error: stages[1] (cart): no event maps to this stage: a run would show it as a stage nobody reaches",
        "warning: analysis.support_events[0]: 'newsleter' matches no event (did you mean 'newsletter'?)",
    ]
    assert validate(config, allow_empty_stages=True).errors == []
    yaml = write_yaml(tmp_path, stages)
    code, out, err = cli(capsys, "validate", "--config", str(yaml))
    assert code == 2 and "add_to_crat' matches no event (did you mean 'add_to_cart'?)" in out
    assert "stages[1] (cart): no event maps to this stage" in one_line(err)
    assert "journeys: 4; the first 4:" in out
    code, out, err = cli(capsys, "validate", "--config", str(yaml), "--allow-empty-stages")
    assert code == 0 and err == "" and "0 error(s), 3 warning(s)" in out


def test_unknown_config_keys_suggest_the_known_one(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    with pytest.raises(ConfigError, match=r"gaol: unknown key \(did you mean 'goal'\?\)"):
        make_config(tmp_path, gaol="buy")
    with pytest.raises(ConfigError, match=r"sessions\.inactivity_minute: unknown key \(did you mean "
                                          r"'inactivity_minutes'\?\)"):
        make_config(tmp_path, sessions={"inactivity_minute": 30})
    sources = [{"name": "web", "kind": "clickstream", "path": "web/*", "columns": WEB_COLUMNS, "timzone": "UTC"}]
    with pytest.raises(ConfigError, match=r"sources\[0\]\.timzone: unknown key \(did you mean 'timezone'\?\)"):
        make_config(tmp_path, sources=sources)
    with pytest.raises(ConfigError, match=r"sessions\.frm: unknown key \(did you mean 'from'\?\)"):
        make_config(tmp_path, sessions={"frm": "domain_sessionid"})
    with pytest.raises(ConfigError, match=r"analysis\.surveys\[0\]\.scroe: unknown key \(did you mean 'score'\?\)"):
        make_config(tmp_path, analysis={"surveys": [{"event": "nps", "scroe": "s"}]})


def test_a_folder_given_as_a_source_path_says_so(tmp_path: Path) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS)
    sources = [{"name": "web", "kind": "clickstream", "path": "web", "columns": WEB_COLUMNS}]
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: 'web' is a folder; give a glob of the files in it, "
                                          r"e\.g\. 'web/\*\.csv'"):
        make_config(tmp_path, sources=sources)
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: 'nothing/\*' matches no file"):
        make_config(tmp_path, sources=[{**sources[0], "path": "nothing/*"}])


def test_empty_and_header_only_files_are_said_to_load_nothing(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    write_csv(tmp_path / "web" / "events.csv", EVENTS.replace("7,a4,,,2026-11-02T09:32:00Z,,", ""))
    (tmp_path / "web" / "header.csv").write_text(EVENTS.strip().splitlines()[0].strip() + "\n")
    (tmp_path / "web" / "empty.csv").write_text("")
    yaml = write_yaml(tmp_path, STAGES)
    code, out, err = cli(capsys, "run", "--no-prefect", "--config", str(yaml))
    assert code == 0, err
    assert "    read nothing from empty.csv: the file is empty: 0 rows" in out.splitlines()
    assert "    read nothing from header.csv: no data row (only a header?): 0 rows" in out.splitlines()
    assert "read nothing from events.csv" not in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(rf"cjm {re.escape(__version__)} \(Python 3\.\d+\.\d+, DuckDB {re.escape(duckdb.__version__)}"
                        r"\)\n", capsys.readouterr().out)


@pytest.mark.parametrize("cron", ["99 * * *", "H * * * *", "every night"])
def test_a_bad_cron_is_one_line_before_any_server_is_needed(tmp_path: Path, cron: str,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens: it must not be reached
    config = project(tmp_path)
    yaml = write_yaml(tmp_path, STAGES)
    assert config.sources
    code, _, err = cli(capsys, "serve", "--config", str(yaml), "--cron", cron)
    assert code == 2
    assert one_line(err).startswith(f"cjm: error: --cron {cron!r}: Invalid cron string")


def test_a_path_step_nobody_has_is_a_typo_not_an_empty_answer(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = project(tmp_path)
    run_steps(config)
    yaml = write_yaml(tmp_path, STAGES)
    code, _, err = cli(capsys, "analyze", "paths-around", "--config", str(yaml), "--anchor", "crat")
    assert code == 2 and one_line(err) == ("cjm: error: analyze paths-around: anchor: 'crat' is no stage "
                                           "(did you mean 'cart'?)")
    code, _, err = cli(capsys, "analyze", "paths-between", "--config", str(yaml), "--start", "browse", "--end",
                       "order")
    assert code == 2 and one_line(err).endswith("end: 'order' is no stage (--level touchpoint?)")
    code, _, err = cli(capsys, "analyze", "paths-around", "--config", str(yaml), "--anchor", "lnding", "--level",
                       "touchpoint")
    assert code == 2 and one_line(err).endswith("anchor: 'lnding' is no touchpoint of any event (did you mean "
                                                "'landing'?)")
    code, out, _ = cli(capsys, "analyze", "paths-around", "--config", str(yaml), "--anchor", "cart")
    assert code == 0 and "browse > cart" in out


# What `cjm run --help` or `cjm validate` would import if the parser registered every analysis (issue 16).
HELP = """
import contextlib, json, sys
from cjm_analytics.cli import main
with contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps([m for m in ("cjm_analytics.analyze_cli", "plotly", "pandas") if m in sys.modules]))
"""


def test_a_command_other_than_analyze_parses_without_importing_the_analyses() -> None:
    done = subprocess.run([sys.executable, "-c", HELP, "run", "--help"], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    assert "--no-prefect" in done.stdout
    assert json.loads(done.stdout.splitlines()[-1]) == []
    # ...while `cjm --help` still lists analyze, and `cjm analyze` parses.
    assert "analyze" in build_parser([]).format_help()
    args = ["analyze", "funnel", "--config", "cjm.yaml", "--steps", "a,b"]
    assert build_parser(args).parse_args(args).analysis == "funnel"
