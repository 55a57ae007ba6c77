# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The dashboard of a real prefork server (workers=3) in headless Chromium.

With bursts in flight it must draw the throughput chart and list exactly
the server's live processes. Its screenshot goes to the test's temporary
folder; with ASYNC_LAB_UPDATE_SCREENSHOT=1 it replaces the README's
(docs/dashboard.png), so a test run leaves the checkout as it found it.
"""

import os
import time

import psutil
from cdp import Chromium
from odoo_server import REPO

CHANNELS = "root:2,root.async_lab:2,root.async_lab.io:2,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"
README_SCREENSHOT = REPO / "docs" / "dashboard.png"
DASHBOARD = "/web#action=async_lab.async_lab_dashboard_action"
#: Jobs in flight for the picture. root:2 runs two jobs at once: the serial
#: channel's one at a time beside I/O jobs, then CPU jobs.
BURSTS = [
    {"workload": "io_sleep", "params": {"ms": 800}, "count": 12, "channel": "root.async_lab.serial"},
    {"workload": "io_sleep", "params": {"ms": 1200}, "count": 24, "channel": "root.async_lab.io"},
    {"workload": "cpu_python", "params": {"n": 3000000}, "count": 6, "channel": "root.async_lab.cpu"},
]
#: Minutes of the timeline in the picture: the bursts fill it.
TIMELINE_MINUTES = "1"
PROCESS_ROWS = """[...document.querySelectorAll(
    '.o_async_lab_server[data-master-pid="%d"] .o_async_lab_process:not([data-state=gone])'
)].map((row) => ({pid: Number(row.dataset.pid), role: row.dataset.role}))"""
CONTENT_HEIGHT = """(() => {
    const content = document.querySelector('.o_action_manager .o_content');
    return Math.ceil(content.getBoundingClientRect().top + content.scrollHeight);
})()"""


def live_pids(server):
    """The master and its children, as the kernel sees them now."""
    master = psutil.Process(server.pid)
    children = [p for p in master.children() if p.status() != psutil.STATUS_ZOMBIE]
    return sorted([server.pid] + [p.pid for p in children])


def cancel_leftovers(db_cursor, burst_ids):
    """The jobs still to run: cancelled, or the next test's server would run them."""
    db_cursor.execute(
        """UPDATE queue_job SET state = 'cancelled', date_cancelled = now() at time zone 'UTC'
            WHERE async_lab_burst_id = ANY(%s) AND state IN ('wait_dependencies', 'pending', 'enqueued', 'started')""",
        [burst_ids],
    )


def test_dashboard_shows_the_live_processes_and_a_chart(make_server, db_cursor, tmp_path):
    target = README_SCREENSHOT if os.environ.get("ASYNC_LAB_UPDATE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
    started = time.monotonic()
    # The picture shows this server alone, not the processes of earlier runs
    # on this throwaway database fading out.
    db_cursor.execute("DELETE FROM async_lab_respawn; DELETE FROM async_lab_worker")
    server = make_server(workers=3, max_cron_threads=1, channels=CHANNELS)
    session = server.session()
    burst_ids = []
    try:
        for body in BURSTS:
            resp = session.post(server.url + "/async_lab/jobs", json=body, timeout=30)
            assert resp.status_code == 202, resp.text
            burst_ids.append(resp.json()["burst_id"])
        path = screenshot_dashboard(server, session, target)
    finally:
        server.stop()
        cancel_leftovers(db_cursor, burst_ids)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 50_000, "a blank page?"
    assert time.monotonic() - started < 90


def screenshot_dashboard(server, session, target):
    """Open the dashboard, check what it shows, and save its picture."""
    with Chromium(width=1440, height=900) as browser:
        browser.set_cookie("session_id", session.cookies["session_id"], server.url)
        browser.navigate(server.url + DASHBOARD)
        browser.wait_for(
            "!!document.querySelector('.o_async_lab_dashboard .o_async_lab_throughput canvas')",
            timeout=60,
            what="the dashboard and its chart",
        )
        # The registry fills within a heartbeat or two, and the page refreshes
        # itself (bus or polling): wait until both agree with the kernel.
        seen = {}

        def rows_are_the_live_processes():
            rows = browser.evaluate(PROCESS_ROWS % server.pid)
            seen.update(page=sorted(row["pid"] for row in rows), live=live_pids(server))
            seen["roles"] = sorted(row["role"] for row in rows)
            return seen["page"] == seen["live"] and len(seen["live"]) == 1 + 3 + 1 + 1 + 1

        try:
            server.wait_for(rows_are_the_live_processes, timeout=45, interval=1, what="process rows = live PIDs")
        except AssertionError as exc:
            raise AssertionError("%s: page %s, live %s" % (exc, seen.get("page"), seen.get("live"))) from None
        browser.evaluate(
            "(() => { const select = document.querySelector('select.o_async_lab_lane_minutes');"
            "select.value = '%s'; select.dispatchEvent(new Event('change')); })()" % TIMELINE_MINUTES
        )
        browser.wait_for(
            "document.querySelectorAll('.o_async_lab_bar[data-channel=\"root.async_lab.serial\"]').length >= 8",
            timeout=30,
            what="serial jobs on the timeline",
        )
        assert seen["roles"] == sorted(["master", "http", "http", "http", "cron", "jobrunner", "gevent"]), seen
        assert browser.evaluate("document.querySelectorAll('.o_async_lab_throughput canvas').length") == 1
        assert not browser.evaluate("!!document.querySelector('.o_error_dialog, .o_async_lab_error')")
        browser.resize(1440, min(browser.evaluate(CONTENT_HEIGHT) + 16, 4000))
        time.sleep(0.5)  # the chart redraws at the new size
        return browser.screenshot(target)
