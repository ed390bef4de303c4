"""`opendot bench db` keeps working, and its plans keep using indexes.

Timings are reported by the benchmark, never asserted; what is asserted is
structural: the data set has the promised size and no platform-state query
reads a large table sequentially under RLS.
"""

from __future__ import annotations

import asyncio

from opendot.bench.db import QUERIES, format_report, measure


def test_platform_state_plans_use_indexes_at_scale(pg_server_url: str) -> None:
    results = asyncio.run(measure(pg_server_url, iterations=3))
    assert results["rows"] == {
        "app_users": 100,
        "agents": 1000,
        "agent_versions": 3000,
        "devices": 10000,
        "deployment_device_targets": 5000,
    }
    for name in QUERIES:
        plan = results["plans"][name]
        assert plan["seq_scans_on_large_tables"] == [], (name, plan["plan"])
    assert results["plans"]["devices_with_state_and_binding"]["uses_index"]
    assert results["timings"]["devices_with_state_and_binding"]["rows_per_user"] == 100
    assert results["timings"]["agents_with_latest_versions"]["rows_per_user"] == 10
    assert "(dropped)" in results["database"]
    assert "plan: devices_with_state_and_binding" in format_report(results)
