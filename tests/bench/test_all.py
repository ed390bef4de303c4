"""`opendot bench all`: option discovery, JSON collection and the targets table.

The samples in `samples/` are real outputs of each bench's quick mode on this
machine (the db plans cut to three lines). A smoke run executes the two
database benches for real through `bench all`, in their smallest modes.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opendot.bench import all as suite
from opendot.bench.summary import SUMMARISERS, Row, format_summary, suite_row
from opendot.cli import build_parser
from tests.conftest import TEST_TIME_UNIT

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def by_metric(rows: list[Row]) -> dict[str, Row]:
    return {row.metric.strip(): row for row in rows}


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser(["bench", "all", "--help"]).parse_args(["bench", "all", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for option in ("--json", "--database-url", "--quick", "--only", "--timeout"):
        assert option in text


def test_only_selects_in_suite_order_and_refuses_unknown_names() -> None:
    assert [b.name for b in suite.selected(None)] == [
        "db",
        "functions",
        "firmware",
        "audio",
        "runtime",
        "realtime",
    ]
    assert [b.name for b in suite.selected("runtime, db")] == ["runtime", "db"]
    with pytest.raises(SystemExit, match="unknown bench"):
        suite.selected("db,gpu")


def _options(*specs: tuple[str, dict[str, Any]]) -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    for option, kwargs in specs:
        parser.add_argument(option, **kwargs)
    return {o: a for a in parser._actions for o in a.option_strings}


def test_command_follows_each_bench_s_own_options(tmp_path: Path) -> None:
    bench = suite.Bench("db", "unused", ("--iterations", "30", "--gone", "1"))
    path_style = _options(
        ("--json", {"metavar": "PATH"}),
        ("--iterations", {"type": int}),
        ("--database-url", {}),
    )
    command, to_file = suite.command_for(
        bench, path_style, quick=True, database_url="postgresql://x", json_path=tmp_path / "j"
    )
    assert to_file
    assert command[3:] == [
        "bench", "db", "--json", str(tmp_path / "j"), "--iterations", "30",
        "--database-url", "postgresql://x",
    ]  # fmt: skip
    flag_style = _options(
        ("--json", {"action": "store_true"}), ("--quick", {"action": "store_true"})
    )
    command, to_file = suite.command_for(
        bench, flag_style, quick=True, database_url="postgresql://x", json_path=tmp_path / "j"
    )
    # JSON on stdout; its own --quick wins; no database option it would not accept.
    assert not to_file and command[3:] == ["bench", "db", "--json", "--quick"]
    command, _ = suite.command_for(
        bench, flag_style, quick=False, database_url=None, json_path=tmp_path / "j"
    )
    assert command[3:] == ["bench", "db", "--json"]


def test_the_real_benches_options_are_discovered() -> None:
    for bench in suite.BENCHES:
        options = suite.accepted_options(bench.module)
        assert "--json" in options, bench.name
        if bench.quick_args:
            assert all(o in options for o in bench.quick_args[::2]), bench.name


def test_json_is_found_after_stray_lines() -> None:
    assert suite.parse_json_output('{"a": 1}\n') == {"a": 1}
    noisy = 'loading model...\nwarming up {not json}\n[\n {"metric": "x"}\n]\ntrailing\n'
    assert suite.parse_json_output(noisy) == [{"metric": "x"}]
    with pytest.raises(ValueError, match="no JSON"):
        suite.parse_json_output("nothing here\n")


def test_db_rows_check_every_query_against_its_target() -> None:
    results = sample("db")
    rows = by_metric(SUMMARISERS["db"](results, False))
    devices = rows["RLS query devices_with_state_and_binding p50"]
    assert devices.value == results["timings"]["devices_with_state_and_binding"]["p50_ms"]
    assert devices.target == "< 5 ms" and devices.verdict == "met"
    assert rows["queries with seq scans on large tables"].verdict == "met"
    slow = copy.deepcopy(results)
    slow["timings"]["settings"]["p50_ms"] = 5.0  # the target is strict
    slow["plans"]["api_keys"]["seq_scans_on_large_tables"] = ["api_keys"]
    rows = by_metric(SUMMARISERS["db"](slow, False))
    assert rows["RLS query settings p50"].verdict == "NOT met"
    plans = rows["queries with seq scans on large tables"]
    assert plans.verdict == "NOT met" and plans.measured == "api_keys"


def test_functions_rows_take_targets_from_the_bench() -> None:
    raw = SUMMARISERS["functions"](sample("functions"), False)
    assert "  PyJWT bare ES256 decode" in [r.metric for r in raw]  # sub-figures stay indented
    rows = by_metric(raw)
    verify = rows["cached ES256 verify (API verifier)"]
    assert verify.value == pytest.approx(0.5214) and verify.target == "< 0.3 ms"
    assert verify.verdict == "NOT met"
    assert rows["PyJWT bare ES256 decode"].verdict == "reported"
    good = [{"metric": "warm", "ms": 9.99, "target_ms": 10.0}]
    assert SUMMARISERS["functions"](good, False)[0].verdict == "met"


def test_audio_rows_are_reported_figures_and_ratios() -> None:
    results = sample("audio")
    rows = by_metric(SUMMARISERS["audio"](results, True))
    total = rows["per-frame CPU: decode+VAD+resample+encode"]
    assert total.value == results["frame"]["total_us"] and total.verdict == "reported"
    soxr = results["resample"]["22050->24000"]
    ratio = rows["soxr stream vs numpy.interp cost (22.05→24 kHz)"]
    expected = soxr["soxr_stream_us_per_chunk"] / soxr["numpy_interp_us_per_chunk"]
    assert ratio.value == pytest.approx(expected)
    assert rows["word error rate (3 phrases)"].value == results["stt"]["wer"]
    ttfa = rows["local TTS time to first audio (Piper)"]
    assert ttfa.value == results["tts"]["local-piper_short"]["ttfa_ms"]
    without_models = {k: v for k, v in results.items() if k not in ("stt", "tts")}
    metrics = by_metric(SUMMARISERS["audio"](without_models, True))
    assert not any("STT" in m or "TTS" in m for m in metrics)


def test_runtime_rows_against_issue_7_targets() -> None:
    results = sample("runtime")
    rows = by_metric(SUMMARISERS["runtime"](results, True))
    assert rows["pipeline floor: added latency p99"].target == "<= 15 ms"
    assert rows["pipeline floor: added latency p99"].verdict == "met"  # 14.95 in the sample
    assert rows["pipeline floor: RSS per idle session"].verdict == "met"
    # A quick run stops below 300 sessions: not decidable, not "NOT met".
    concurrency = rows["pipeline floor: streaming devices on one core (p99 lag < 20 ms)"]
    assert concurrency.verdict == "n/a" and "stopped at 100" in concurrency.note
    assert rows["lifetime: sessions opened and closed"].verdict == "n/a"

    full = copy.deepcopy(results)
    full["latency"]["p99_ms"] = 15.5
    full["concurrency"]["levels"].append({"sessions": 1000})
    full["lifetime"].update(
        sessions=10_000, rss_before_mib=70.0, rss_after_mib=80.0, first_turn_ms=6.0
    )
    full["lifetime"]["last_turn_ms"] = 6.0 * 1.5 + 2.0
    rows = by_metric(SUMMARISERS["runtime"](full, False))
    assert rows["pipeline floor: added latency p99"].verdict == "NOT met"
    assert (
        rows["pipeline floor: streaming devices on one core (p99 lag < 20 ms)"].verdict == "NOT met"
    )
    assert rows["lifetime: sessions opened and closed"].verdict == "met"
    assert rows["lifetime: RSS before -> after"].verdict == "NOT met"  # +14 %
    assert rows["lifetime: turn latency first -> last"].verdict == "met"  # at the bound


def test_realtime_rows_against_issue_14_targets() -> None:
    results = sample("realtime")  # a quick run on a busy shared machine
    rows = by_metric(SUMMARISERS["realtime"](results, True))
    bridge = rows["provider audio delta -> first device frame p99 (in the runtime)"]
    assert bridge.target == "<= 5 ms"
    assert bridge.value == results["latency"]["runtime_share_p99_ms"]
    assert rows["RSS per streaming S2S session"].verdict == "met"
    capacity = rows["S2S streaming devices on one core (probe <= 1.25x)"]
    assert capacity.verdict == "n/a" and "stopped at 50" in capacity.note
    traffic = rows["messages/s to the provider per streaming session"]
    assert traffic.value == results["capacity"]["levels"][0]["provider_messages_per_s_per_session"]
    full = copy.deepcopy(results)
    full["capacity"]["levels"].append({"sessions": 400})
    full["latency"]["runtime_share_p99_ms"] = 4.0
    rows = by_metric(SUMMARISERS["realtime"](full, False))
    assert rows["S2S streaming devices on one core (probe <= 1.25x)"].verdict == "NOT met"
    assert rows["provider audio delta -> first device frame p99 (in the runtime)"].verdict == "met"


@pytest.mark.parametrize("name", sorted(SUMMARISERS))
@pytest.mark.parametrize("results", [{}, [], None, {"timings": "odd"}])
def test_a_changed_output_gives_missing_rows_not_a_crash(name: str, results: Any) -> None:
    rows = SUMMARISERS[name](results, False)
    assert rows and all(isinstance(r, Row) for r in rows)
    assert any(r.verdict == "missing" for r in rows)
    assert not any(r.met is True for r in rows)


def test_suite_time_is_judged_only_for_a_complete_full_run() -> None:
    assert suite_row(599.0, 600.0, quick=False, complete=True).verdict == "met"
    assert suite_row(601.0, 600.0, quick=False, complete=True).verdict == "NOT met"
    assert suite_row(10.0, 600.0, quick=True, complete=True).verdict == "n/a"
    assert suite_row(10.0, 600.0, quick=False, complete=False).verdict == "n/a"


def test_a_failed_bench_is_one_row_in_the_table() -> None:
    failed = suite.Outcome("audio", ["x"], seconds=3.0, exit_code=1, error="exited with code 1")
    rows = suite.summarise([failed], 3.0, quick=False)
    assert rows[0].bench == "audio" and rows[0].measured == "exited with code 1"
    text = format_summary(rows, outcomes_seconds={"audio": 3.0})
    assert "audio 3.0 s" in text and "exited with code 1" in text


def test_table_lists_what_is_not_met() -> None:
    rows = [
        Row("db", "q p50", "6 ms", "< 5 ms", False, 6.0),
        Row("db", "r p50", "1 ms", "< 5 ms", True, 1.0),
    ]
    text = format_summary(rows)
    assert "targets met: 1; not met: 1" in text
    assert "NOT met: #2 q p50: 6 ms (< 5 ms)" in text
    header, first = text.splitlines()[2:4]
    assert header.index("measured") == first.index("6 ms")  # aligned columns


def test_quick_smoke_of_the_database_benches(pg_server_url: str, tmp_path: Path) -> None:
    """`bench all` really runs db and functions in subprocesses and collects their JSON."""
    out = tmp_path / "all.json"
    command = [sys.executable, "-m", "opendot.cli", "bench", "all", "--quick"]
    command += ["--only", "db,functions", "--database-url", pg_server_url, "--json", str(out)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=180 * TEST_TIME_UNIT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(out.read_text())
    assert set(document["benches"]) == {"db", "functions"}
    for bench in document["benches"].values():
        assert bench["error"] is None and bench["exit_code"] == 0
    assert document["benches"]["db"]["results"]["iterations"] == 30
    assert isinstance(document["benches"]["functions"]["results"], list)
    verdicts = {row["metric"]: row for row in document["summary"]}
    assert verdicts["RLS query settings p50"]["value"] > 0
    targets = [row for row in document["summary"] if row["bench"] == "functions" and row["target"]]
    assert any(row["metric"].startswith("cached ES256 verify") for row in targets), targets
    assert all(row["met"] in (True, False) for row in targets if row["target"] != "report")
    assert "opendot bench all — summary" in result.stdout
    # The saved run gives the same table without running anything.
    again = subprocess.run(
        [sys.executable, "-m", "opendot.cli", "bench", "all", "--from-json", str(out)],
        capture_output=True,
        text=True,
        timeout=60 * TEST_TIME_UNIT,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    table = result.stdout[result.stdout.index("opendot bench all — summary") :]

    def stable(text: str) -> list[str]:  # wall times are rounded in the JSON
        return [line for line in text.splitlines()[1:] if "wall time" not in line]

    assert stable(again.stdout) == stable(table)


def test_from_json_refuses_a_file_that_is_not_a_saved_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"benches": []}')
    argv = ["bench", "all", "--from-json", str(bad)]
    args = build_parser(argv).parse_args(argv)
    assert suite.run(args) == 1
    assert "cannot read" in capsys.readouterr().err


def test_firmware_rows_judge_each_case_against_today() -> None:
    results = {
        "goal_delta_p50_ms": 1.0,
        "cases": {
            "today": {"p50_ms": 2.0, "p99_ms": 5.0},
            "no_rollout": {"p50_ms": 2.2, "p99_ms": 5.1, "delta_p50_ms": 0.2},
            "offered": {"p50_ms": 3.5, "p99_ms": 6.0, "delta_p50_ms": 1.5},
            "updated": {"p50_ms": 2.4, "p99_ms": 5.5, "delta_p50_ms": 0.4},
        },
        "firmware_offer_sql": {"p50_ms": 0.3, "server_p50_ms": 0.1},
    }
    rows = by_metric(SUMMARISERS["firmware"](results, False))
    assert rows["OTA answer, no rollout for the board: p50 - today"].verdict == "met"
    assert rows["OTA answer, offered a release: p50 - today"].verdict == "NOT met"
    assert rows["firmware_offer inside the server p50"].verdict == "reported"
