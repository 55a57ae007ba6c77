# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The capacity advisor against real prefork servers, misconfigured on purpose (issue #13)."""

import configparser

from odoo_server import REPO, post_burst, wait_for_bursts_done

#: Root capacity 3 for 3 HTTP workers; the io channel gets capacity 1.
SATURATING = "root:3,root.async_lab:3,root.async_lab.io:1,root.async_lab.cpu:1,root.async_lab.serial:1:sequential"


def advice(server, session, window=15):
    resp = session.get(server.url + "/async_lab/advice", params={"window": window}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def node_of(data, server):
    """The advice's name of ``server``'s node (its master's PID tells it apart), or None."""
    return next((h["host"] for h in data["hosts"] if h["master_pid"] == server.pid), None)


def findings_of(data, server):
    """``{code: finding}`` of ``server``'s node, and of the database as a whole."""
    node = node_of(data, server)
    assert node, data["hosts"]
    return {f["code"]: f for f in data["findings"] if f["host"] in (node, None)}


def reported(server, session, window=15):
    """The advice once ``server``'s processes have reported their configuration."""

    def check():
        data = advice(server, session, window)
        return data if node_of(data, server) else None

    return server.wait_for(check, timeout=30, what="the server's configuration reported")


def test_root_capacity_saturation_and_durations_near_the_limit(make_server, db_cursor):
    server = make_server(workers=3, channels=SATURATING, options={"limit_time_real": 5})
    session = server.session()
    # 150 jobs of 0.5 s on a channel of capacity 1, within the minute: rho = 150 × 0.5 / 60 = 1.25.
    post_burst(server, session, workload="io_sleep", params={"ms": 500}, count=150, channel="root.async_lab.io")
    # Jobs of 4.2 s under limit_time_real = 5 s: 84 % of the limit.
    slow = post_burst(
        server, session, workload="io_sleep", params={"ms": 4200}, count=2, channel="root.async_lab.serial"
    )
    wait_for_bursts_done(server, db_cursor, [slow["burst_id"]], 2, timeout=60, interval=1, what="the slow jobs done")
    data = reported(server, session, window=1)
    found = findings_of(data, server)
    # The node whose runner holds queue_job's lock is the one the channel rules judge.
    assert data["measured"]["runner_nodes"] == [node_of(data, server)], data["measured"]

    root = found["root_capacity_ge_workers"]
    assert (root["severity"], root["evidence"]["root_capacity"], root["evidence"]["http_workers"]) == ("critical", 3, 3)
    assert root["fix"].startswith("channels = root:2,"), root["fix"]

    saturated = found["channel_saturated"]
    assert saturated["evidence"]["channel"] == "root.async_lab.io"
    assert saturated["evidence"]["rho"] >= 1, saturated
    assert saturated["evidence"]["queue_growth_per_minute"] > 0
    assert "root.async_lab.io:" in saturated["fix"]

    near = found["job_duration_near_limit"]
    assert near["evidence"]["channel"] == "root.async_lab.serial"
    assert near["evidence"]["limit_time_real"] == 5
    assert near["evidence"]["p95_seconds"] >= 4.0


def test_queue_job_not_server_wide(make_server):
    server = make_server(workers=2, options={"server_wide_modules": "base,web"})
    session = server.session()
    found = findings_of(reported(server, session), server)
    assert found["queue_job_not_server_wide"]["severity"] == "critical"
    assert found["queue_job_not_server_wide"]["fix"] == "server_wide_modules = base,web,queue_job"


def example_options():
    """The [options] and channels of odoo.conf.example, without its paths, ports and database."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    parser.read(REPO / "odoo.conf.example")
    keep = ("workers", "max_cron_threads", "server_wide_modules", "proxy_mode", "without_demo")
    options = {key: value for key, value in parser["options"].items() if key in keep or key.startswith("limit_")}
    return options, parser["queue_job"]["channels"]


def test_the_example_configuration_gets_no_warning(make_server):
    options, channels = example_options()
    server = make_server(workers=int(options.pop("workers")), channels=channels, options=options)
    session = server.session()
    last = {}

    def settled():
        # The job runner starts 5 s after the server, and the crons of a fresh
        # server run their late calls first: wait until the advice settles.
        data = last["data"] = reported(server, session)
        last["serious"] = [f for f in findings_of(data, server).values() if f["severity"] != "info"]
        return not last["serious"]

    try:
        server.wait_for(settled, timeout=90, interval=2, what="no warning on odoo.conf.example")
    except AssertionError as exc:
        raise AssertionError("%s: %s" % (exc, last.get("serious"))) from None
    node = next(h for h in last["data"]["hosts"] if h["master_pid"] == server.pid)
    assert node["config"]["workers"] == 9 and node["channels"] == example_options()[1]
    assert last["data"]["checked"]
