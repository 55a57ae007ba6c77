# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The dashboard's live updates still reach an Async Lab user on a real prefork server.

The channel is scoped to the Async Lab / User group (``ir.websocket``): the
web client asks for the plain name, the gevent process subscribes the user
to the group's channel, and finishing jobs notify it. (That a portal or
anonymous websocket gets nothing is tested in tests/test_access.py.)
"""

import json
import time

import websocket

DASHBOARD_CHANNEL = "async_lab.dashboard"  # models/async_lab_stats.py


def test_lab_user_websocket_gets_the_refresh(make_server):
    server = make_server(workers=2, max_cron_threads=0)
    session = server.session()

    def connect():  # the gevent process starts after the HTTP workers
        try:
            return websocket.create_connection(
                "ws://127.0.0.1:%d/websocket" % server.gevent_port,
                timeout=30,
                origin=server.url,
                cookie="session_id=%s" % session.cookies["session_id"],
            )
        except ConnectionRefusedError:
            return None

    ws = server.wait_for(connect, timeout=60, what="the websocket (gevent) port")
    try:
        ws.send(json.dumps({"event_name": "subscribe", "data": {"channels": [DASHBOARD_CHANNEL], "last": 0}}))
        resp = session.post(server.url + "/async_lab/jobs", json={"workload": "noop", "count": 3}, timeout=30)
        assert resp.status_code == 202, resp.text
        types = []
        deadline = time.monotonic() + 60
        while "async_lab.refresh" not in types and time.monotonic() < deadline:
            types += [n["message"]["type"] for n in json.loads(ws.recv())]
        assert "async_lab.refresh" in types, types
    finally:
        ws.close()
