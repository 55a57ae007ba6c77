# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What a child process of the ``processes`` strategy does first: die with its parent.

An Odoo worker that runs a process pool can be killed at any time: by the
prefork watchdog (``limit_time_real``), by the kernel's OOM killer, by
SIGKILL. Its children must not outlive it as orphans under PID 1, holding
memory and CPU. :func:`die_with_parent` asks the kernel to send SIGKILL to
the child when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``), and
where that call is not available it starts a thread that watches the
parent. Like :mod:`.workloads`, the child loads this module alone, from its
file: it imports nothing from the addon.
"""

import ctypes
import ctypes.util
import os
import signal
import threading
import time

#: prctl option, from <linux/prctl.h>.
PR_SET_PDEATHSIG = 1
#: Seconds between two looks at the parent, where prctl is not available.
WATCH_INTERVAL = 0.5


def _set_parent_death_signal(signum):
    """Ask Linux to send ``signum`` to this process when its parent dies;
    return whether it agreed."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc, or no prctl (not Linux)
        return False


def _watch_parent(parent_pid, interval):
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(1)


def die_with_parent(parent_pid, use_prctl=True, interval=WATCH_INTERVAL):
    """End this process when ``parent_pid``, its parent, ends.

    The kernel kills it (SIGKILL) if ``prctl`` is available and
    ``use_prctl``, else a daemon thread checks every ``interval`` seconds
    whether the parent changed. Return ``"prctl"`` or ``"thread"``. A parent
    that died before this call is seen at once: the process exits.
    """
    how = "prctl" if use_prctl and _set_parent_death_signal(signal.SIGKILL) else "thread"
    if how == "thread":
        threading.Thread(
            target=_watch_parent, args=(parent_pid, interval), daemon=True, name="async_lab parent watch"
        ).start()
    if os.getppid() != parent_pid:  # the parent died before the kernel was asked
        os._exit(1)
    return how
