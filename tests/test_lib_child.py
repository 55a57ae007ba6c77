# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import contextlib
import os
import select
import subprocess
import sys
import textwrap

import psutil

from odoo.tests import BaseCase

from ..lib import child, strategies

#: Longest wait for a script to start, or for orphans to die: bounds, not measures.
START_TIMEOUT = 90
DEATH_TIMEOUT = 5

#: A process pool of the processes strategy, with tasks that last longer
#: than DEATH_TIMEOUT: it prints "started" once its children run them.
POOL_SCRIPT = """
import sys
import odoo.addons
odoo.addons.__path__.append(sys.argv[1])
from odoo.addons.async_lab.lib import strategies
start = strategies._Stopwatch.start
def started(self):
    start(self)
    print("started", flush=True)
strategies._Stopwatch.start = started
if __name__ == "__main__":
    strategies.run_strategy("processes", "io_sleep", {"ms": 10000}, 2, pool_size=2)
"""

#: A forked child that watches its parent with a thread (no prctl).
THREAD_SCRIPT = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
import child
if os.fork() == 0:
    child.die_with_parent(os.getppid(), use_prctl=False, interval=0.05)
    print("started", flush=True)
    time.sleep(30)
    os._exit(0)
time.sleep(30)
"""


class TestChildrenDieWithTheirParent(BaseCase):
    """Children of the processes strategy die with a worker killed by SIGKILL."""

    def run_and_kill(self, script, arg):
        """Start ``script``, wait for "started", SIGKILL it; return its
        children (grandchildren included) still alive DEATH_TIMEOUT later."""
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), arg], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        orphans = []
        try:
            ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
            line = proc.stdout.readline() if ready else b""
            if line.strip() != b"started":
                rest = proc.communicate(timeout=START_TIMEOUT)[0] if ready else b""
                self.fail("the script did not start: %s" % (line + rest).decode())
            orphans = [
                p
                for p in psutil.Process(proc.pid).children(recursive=True)
                if "resource_tracker" not in " ".join(p.cmdline())
            ]
            self.assertTrue(orphans)
            proc.kill()
            proc.wait()
            _gone, alive = psutil.wait_procs(orphans, timeout=DEATH_TIMEOUT)
            return alive
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            for orphan in orphans:
                with contextlib.suppress(psutil.NoSuchProcess):
                    orphan.kill()

    def test_pool_children_die_with_a_killed_parent(self):
        addons = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(strategies.__file__))))
        self.assertEqual(self.run_and_kill(POOL_SCRIPT, addons), [])

    def test_parent_watch_thread_where_prctl_is_missing(self):
        self.assertEqual(self.run_and_kill(THREAD_SCRIPT, os.path.dirname(os.path.abspath(child.__file__))), [])
