# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""R4's users, for locust (run by bench/load.py, in its own venv under .dev/).

Each user reads what a dashboard and an API client read: whoami, the stats
route, the dashboard's data call (JSON-RPC) and the status of one job of the
running burst. They share the admin session that bench/load.py opened
(ASYNC_LAB_SESSION) and poll the jobs of ASYNC_LAB_JOB_UUIDS.
"""

import os
import random

from locust import HttpUser, between, task

SESSION = os.environ.get("ASYNC_LAB_SESSION", "")
JOB_UUIDS = [uuid for uuid in os.environ.get("ASYNC_LAB_JOB_UUIDS", "").split(",") if uuid]


class LabUser(HttpUser):
    wait_time = between(0.05, 0.25)

    def on_start(self):
        self.client.cookies.set("session_id", SESSION)

    @task(3)
    def whoami(self):
        with self.client.get("/async_lab/whoami", name="whoami", catch_response=True) as resp:
            if resp.status_code != 200 or "pid" not in resp.text:
                resp.failure("status %s: %s" % (resp.status_code, resp.text[:200]))

    @task(2)
    def stats(self):
        with self.client.get("/async_lab/stats", name="stats", catch_response=True) as resp:
            if resp.status_code != 200 or "channels" not in resp.text:
                resp.failure("status %s: %s" % (resp.status_code, resp.text[:200]))

    @task(2)
    def dashboard_data(self):
        body = {"jsonrpc": "2.0", "method": "call", "params": {}}
        with self.client.post(
            "/async_lab/dashboard/data", json=body, name="dashboard data", catch_response=True
        ) as resp:
            if resp.status_code != 200 or "error" in resp.json() or "result" not in resp.json():
                resp.failure("status %s: %s" % (resp.status_code, resp.text[:200]))

    @task(3)
    def job_status(self):
        uuid = random.choice(JOB_UUIDS)
        with self.client.get("/async_lab/jobs/%s" % uuid, name="job status", catch_response=True) as resp:
            if resp.status_code != 200 or resp.json().get("uuid") != uuid:
                resp.failure("status %s: %s" % (resp.status_code, resp.text[:200]))
