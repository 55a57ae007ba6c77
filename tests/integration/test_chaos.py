# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""R1, small: bench/chaos.py's run with fewer jobs and kills, in ``make test``.

150 jobs (about 40 s of work per channel) over the io, cpu and serial channels
of a prefork server while 3 HTTP
workers, the job runner and the cron worker are SIGKILLed, PostgreSQL restarts
(this checkout's own cluster, in .dev/) and Odoo restarts (SIGTERM, start).
Every job ends done or failed with a reason, each kill has its respawn
record, heartbeats and the stats route come back after both restarts, and the
server log has no "bad query" or "could not serialize".
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from chaos import CHANNELS, Chaos, own_cluster


def test_jobs_and_process_map_survive_kills_and_restarts(make_server, db_params):
    cluster = own_cluster(db_params)
    if cluster is None:
        pytest.skip("PostgreSQL is not this checkout's own cluster (.dev/): it cannot be restarted here")
    server = make_server(workers=5, max_cron_threads=1, channels=CHANNELS)
    chaos = Chaos(server, db_params, jobs=150, kills=3, cluster=cluster, seconds=40, pause=1.5, settle_timeout=150)
    ok = chaos.run()
    report = chaos.report()
    # The recovery times, in pytest's output (-s or -rA).
    # pylint: disable-next=print-used
    print(report)
    assert ok, report
    assert len(chaos.killed) == 5
    for kind in (
        "PostgreSQL restart: heartbeats",
        "Odoo restart: heartbeats",
        "PostgreSQL restart: stats route",
        "Odoo restart: stats route",
    ):
        assert kind in chaos.recovery, report
