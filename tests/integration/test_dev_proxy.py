# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Behind the dev reverse proxy of ``make run`` the dashboard goes live on the bus.

The proxy is the one ``make run`` starts (tools/devenv.py ``start_proxy``):
nginx sends ``/websocket`` to the gevent process and the rest to the HTTP
workers, as production does. Through it, in Chromium, the dashboard must
say "Live (bus)" and show a burst's jobs with its polling switched off, so
that only a bus notification can have brought them.
"""

import itertools
import sys

import pytest
from cdp import Chromium
from odoo_server import REPO, free_port

sys.path.insert(0, str(REPO / "tools"))
import devenv

DASHBOARD = "/web#action=async_lab.async_lab_dashboard_action"
#: After this, the page's timers of POLL_INTERVAL or more (the dashboard's
#: polls: static/src/dashboard/live_updates.js) never fire; each one it
#: tries to set is counted instead.
STOP_POLLING = """(() => {
    const { browser } = odoo.loader.modules.get("@web/core/browser/browser");
    const { POLL_INTERVAL } = odoo.loader.modules.get("@async_lab/dashboard/live_updates");
    const setTimeout = browser.setTimeout;
    window.asyncLabPollsDropped = 0;
    browser.setTimeout = (callback, delay, ...args) => {
        if (delay >= POLL_INTERVAL) {
            window.asyncLabPollsDropped++;
            return 0;
        }
        return setTimeout(callback, delay, ...args);
    };
    return POLL_INTERVAL;
})()"""
LIVE_LABEL = "(document.querySelector('.o_async_lab_live') || {}).textContent || ''"
BARS_DONE = """[...document.querySelectorAll('.o_async_lab_bar[data-state="done"]')]
    .map((bar) => Number(bar.dataset.jobId))"""


@pytest.fixture
def proxied(make_server, tmp_path):
    """A prefork server, and the dev proxy in front of it: (server, proxy URL)."""
    server = make_server(workers=2, max_cron_threads=0)
    listen = free_port()
    proxy = devenv.start_proxy(tmp_path / "nginx", listen=listen, http=server.port, gevent=server.gevent_port)
    try:
        yield server, "http://127.0.0.1:%d" % listen
    finally:
        devenv.stop_proxy(proxy)


def test_proxy_config_routes_the_websocket_to_gevent(tmp_path):
    conf = devenv.proxy_config(tmp_path, listen=18080, http=18069, gevent=18072).read_text()
    websocket = conf[conf.index("location /websocket") : conf.index("location / ")]
    assert "proxy_pass http://127.0.0.1:18072;" in websocket
    assert "proxy_set_header Upgrade $http_upgrade;" in websocket
    assert "proxy_pass http://127.0.0.1:18069;" in conf[conf.index("location / ") :]
    assert "listen 127.0.0.1:18080;" in conf
    # Nothing outside the folder it was given (no /var/log, no /run).
    pairs = itertools.pairwise(conf.split())
    paths = [word.rstrip(";") for prev, word in pairs if word.startswith("/") and prev != "location"]
    assert paths and all(path.startswith(str(tmp_path.resolve())) for path in paths), paths


def test_dashboard_goes_live_through_the_proxy(proxied, db_cursor):
    server, url = proxied
    session = server.session()
    with Chromium() as browser:
        browser.set_cookie("session_id", session.cookies["session_id"], url)
        browser.navigate(url + DASHBOARD)
        browser.wait_for("!!document.querySelector('.o_async_lab_dashboard .o_async_lab_live')", timeout=60)
        browser.evaluate(STOP_POLLING)
        # The poll already set when the page opened fires within POLL_INTERVAL,
        # then tries to set the next one: from then on no poll can refresh.
        browser.wait_for("window.asyncLabPollsDropped > 0", timeout=15, what="the last poll")
        resp = session.post(server.url + "/async_lab/jobs", json={"workload": "noop", "count": 3}, timeout=30)
        assert resp.status_code == 202, resp.text
        db_cursor.execute("SELECT id FROM queue_job WHERE async_lab_burst_id = %s", [resp.json()["burst_id"]])
        job_ids = sorted(row[0] for row in db_cursor.fetchall())
        assert len(job_ids) == 3
        shown = browser.wait_for(
            "(() => { const ids = %s; return %s.every((id) => ids.includes(id)) && ids; })()" % (BARS_DONE, job_ids),
            timeout=60,
            what="the burst's jobs, done, on the timeline",
        )
        assert set(job_ids) <= set(shown)
        label = browser.wait_for("%s.includes('bus') && %s" % (LIVE_LABEL, LIVE_LABEL), timeout=10, what="Live (bus)")
        assert label.strip() == "Live (bus)", label
        assert not browser.evaluate("!!document.querySelector('.o_error_dialog, .o_async_lab_error')")
    access = (server.conf_path.parent / "nginx" / "access.log").read_text()
    assert "GET /websocket" in access and '" 101 ' in access, access[-2000:]
