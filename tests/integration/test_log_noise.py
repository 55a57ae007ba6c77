# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Expected, handled conditions are not ERRORs with a traceback (issue 17).

Without a proxy, the web client opens ``/websocket`` on the HTTP port of a
prefork server, where a worker cannot take it over: one WARNING line that
says what to do, then silence, instead of a traceback per page load.
"""

import base64
import os

import requests


def test_websocket_on_the_http_port_is_one_warning_line(make_server):
    server = make_server(workers=1, max_cron_threads=0)
    for _i in range(3):
        resp = requests.get(
            server.url + "/websocket",
            timeout=30,
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Origin": server.url,
                "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            },
        )
        assert resp.status_code >= 400, resp.status_code
    log = server.wait_for(
        lambda: server.log().count("/websocket") >= 3 and server.log(), timeout=30, what="the three requests in the log"
    )
    lines = [line for line in log.splitlines() if "Couldn't bind the websocket" in line]
    assert len(lines) == 1, lines
    assert " WARNING " in lines[0] and "gevent_port" in lines[0], lines
    assert "Traceback" not in log and "Exception during request handling" not in log, log[-3000:]
