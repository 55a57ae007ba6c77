# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Async Lab's HTTP API. Routes stay thin: parse, bound, call one method."""

import os
import socket
import threading

from odoo import http
from odoo.http import request

from ..process_tracker import current_role, master_pid, server_mode


class AsyncLabController(http.Controller):
    @http.route("/async_lab/whoami", type="http", auth="user", methods=["GET"])
    def whoami(self):
        """Which process and thread served this very request."""
        return request.make_json_response({
            "pid": os.getpid(),
            "master_pid": master_pid(),
            "host": socket.gethostname(),
            "role": current_role(),
            "thread": threading.current_thread().name,
            "db": request.db,
            "uid": request.env.uid,
            "mode": server_mode(),
        })  # fmt: skip
