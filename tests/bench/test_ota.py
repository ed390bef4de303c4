"""`opendot bench ota` in its smallest form: it runs and reports what it measured."""

from __future__ import annotations

import asyncio

from opendot.bench import ota


def test_ota_bench_measures_the_bootstrap_with_and_without_a_backlog(pg_server_url: str) -> None:
    results = asyncio.run(ota.measure(pg_server_url, iterations=12))
    assert results["iterations"] == 12
    # Every bootstrap of the backlog case swept its 20 dead requests.
    assert results["dead_rows_deleted_by_bootstraps"] == 12 * 20
    assert results["bootstrap_no_dead_rows"]["p50_ms"] > 0
    assert "sweeping 20 per call" in ota.format_report(results)
