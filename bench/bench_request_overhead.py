#!/usr/bin/env python3
# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Request overhead of async_lab: requests/s with it installed, against without.

Run it with the project's venv, after ``make bootstrap``::

    .venv/bin/python bench/bench_request_overhead.py

1. It creates, or reuses, two databases on the server of ``.dev/odoo.conf``,
   both without demo data:

   WITH     async_lab installed (a reused one is updated to this checkout,
            ``-u async_lab``, unless ``--no-update``);
   WITHOUT  only what async_lab depends on (the ``depends`` of its manifest:
            base, web, bus, queue_job), so that the ratio is async_lab's own
            cost and not that of its dependencies.
2. It starts one prefork server per database with
   ``tests/integration/odoo_server.py``: 2 HTTP workers, 1 cron worker,
   queue_job server-wide, on free ports. One server per database, not one
   server for both: async_lab's Python code (process tracker, heartbeat
   thread, patches of queue_job and of the prefork worker) is loaded per
   process, so a worker serving both databases would charge part of the
   overhead to the baseline as well.
3. It logs in on each and runs ``--rounds`` pairs of rounds WITH, WITHOUT,
   WITH, WITHOUT... of ``--seconds`` each (after ``--warmup`` unmeasured
   seconds). Many short rounds, alternated, let drift (other work on the
   machine, caches, PostgreSQL) hit both sides alike.
   While one server is measured the other one is frozen (SIGSTOP to its
   process group, SIGCONT after), so on a small machine the idle server
   takes no CPU from the measured one; ``--no-freeze`` keeps both running.
4. The load comes from ``--clients`` separate processes (started once,
   reused by every round), each sending
   authenticated JSON-RPC calls to ``--route`` (``/web/session/check``,
   a no-op behind Odoo's full request path: session, database, registry,
   authentication, dispatch) one after the other, on a new connection each
   time (Odoo's prefork workers close the connection after every answer).
5. It prints each round (requests/s, latency, the Odoo processes' CPU per
   request, and how much of the machine other work took meanwhile, to tell
   noisy rounds), the medians and the ratio WITH / WITHOUT of the median
   requests/s, over all rounds and over the quiet ones. The goal is >= 0.98.
   ``--aa`` runs the same rounds with both servers on the WITHOUT database:
   its ratio is the bench's own bias and noise on this machine, to read the
   real one against.

The servers log at ``--log-level`` (warn: no line per request, so the
baseline is as cheap as it gets and the overhead shows the most). Every
process it starts is stopped at the end, also on Ctrl-C; it writes nothing in
the repository (server configs and logs go to a temporary folder, kept only
with ``--keep-logs`` or when a server fails).
"""

# A benchmark script: it prints its figures on stdout.
# pylint: disable=print-used

import argparse
import ast
import contextlib
import http.client
import itertools
import json
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The integration tests' server helpers (tests/integration/odoo_server.py), shared by the benchmarks.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from odoo_server import (
    REPO,
    OdooServer,
    db_params,
    drop_database,
    end_bench,
    ensure_modules,
    interrupt_on_sigterm,
    module_states,
    run_bench,
)

#: The baseline database has what async_lab depends on, and not async_lab.
BASELINE_MODULES = ",".join(ast.literal_eval((REPO / "__manifest__.py").read_text())["depends"])
GOAL = 0.98
#: A round where work outside this run took more of the machine than this is flagged.
NOISY_OTHER_PCT = 10
JSONRPC_BODY = json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}, "id": 1}).encode()


# -- load generator (runs in the client processes) ------------------------------
def client(port, route, cookie, start_at, stop_at):
    """Call ``route`` back to back; count the calls answered in [start_at, stop_at)."""
    headers = {"Content-Type": "application/json", "Cookie": "session_id=%s" % cookie}
    done, errors, latencies = 0, 0, []
    while True:
        t0 = time.time()
        if t0 >= stop_at:
            break
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", route, JSONRPC_BODY, headers)
            resp = conn.getresponse()
            ok = resp.status == 200 and b'"error"' not in resp.read()
            conn.close()
        except (OSError, http.client.HTTPException):
            ok = False
        t1 = time.time()
        if start_at <= t1 < stop_at:
            if ok:
                done += 1
                latencies.append(t1 - t0)
            else:
                errors += 1
    return done, errors, latencies


def client_loop(tasks, results):
    """A client process: run each round it is given, until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    for task in iter(tasks.get, None):
        results.put(client(*task))


class LoadGenerator:
    """``count`` client processes, started once and given one task per round."""

    def __init__(self, ctx, count):
        self.results = ctx.Queue()
        self.tasks = [ctx.Queue() for _i in range(count)]
        self.procs = [ctx.Process(target=client_loop, args=(tasks, self.results), daemon=True) for tasks in self.tasks]
        for proc in self.procs:
            proc.start()

    def start(self, *task):
        for tasks in self.tasks:
            tasks.put(task)

    def processes(self):
        import psutil

        return [psutil.Process(proc.pid) for proc in self.procs if proc.is_alive()]

    def collect(self):
        return [self.results.get(timeout=60) for _tasks in self.tasks]

    def close(self):
        for tasks in self.tasks:
            tasks.put(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()


# -- databases ----------------------------------------------------------------------
def ensure_database(conf, params, db, *, with_async_lab, update=True):
    """Create ``db`` with the modules of its side, or check and reuse it."""
    modules = BASELINE_MODULES.split(",") + (["async_lab"] if with_async_lab else [])
    try:
        states = module_states(params, db)
    except ValueError as exc:
        sys.exit("%s: choose another name" % exc)
    if not with_async_lab and (states or {}).get("async_lab") == "installed":
        sys.exit("database %s has async_lab installed, so it is no baseline: use --recreate" % db)
    ensure_modules(conf, params, db, modules, update=["async_lab"] if with_async_lab and update else [])


# -- servers -------------------------------------------------------------------------
def signal_group(server, signum):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signum)


def cpu_seconds(procs):
    """user + system CPU seconds used so far by the live processes of ``procs``."""
    import psutil

    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            cpu = proc.cpu_times()
            total += cpu.user + cpu.system
    return total


def tree_processes(server):
    """The master and its live children."""
    import psutil

    try:
        master = psutil.Process(server.pid)
        return [master] + master.children(recursive=True)
    except psutil.Error:
        return []


class CpuSample:
    """CPU seconds of the machine, of the measured server and of the rest of the run.

    The difference between two samples tells the server's CPU per request,
    and how busy the machine was with work that is not this run's ("other":
    the whole machine's busy time minus the measured server, the clients,
    this process and PostgreSQL; approximate, as PostgreSQL serves others too).
    """

    def __init__(self, server, clients):
        import psutil

        cpu = psutil.cpu_times()
        self.wall = time.monotonic()
        # Linux counts guest time in user time already: busy = the sum of these.
        self.machine = sum(getattr(cpu, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq"))
        self.server = cpu_seconds(tree_processes(server))
        postgres = [p for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "postmaster")]
        self.ours = self.server + cpu_seconds(clients + postgres + [psutil.Process()])

    def since(self, before):
        """(server CPU seconds, "other" share of the machine in %) between two samples."""
        wall = (self.wall - before.wall) * (os.cpu_count() or 1)
        other = (self.machine - before.machine) - (self.ours - before.ours)
        return self.server - before.server, max(0.0, 100.0 * other / wall) if wall else 0.0


def warm_up(server, route, cookie, count=50):
    for _i in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request(
            "POST", route, JSONRPC_BODY, {"Content-Type": "application/json", "Cookie": "session_id=%s" % cookie}
        )
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status != 200 or b'"error"' in body:
            sys.exit("%s answers %s %s on %s: %s" % (server.db, resp.status, route, server.url, body[:300]))


def run_round(load, server, route, cookie, *, warmup, seconds):
    """One round against ``server``: ``warmup`` s of load, then ``seconds`` measured."""
    start_at = time.time() + warmup
    stop_at = start_at + seconds
    load.start(server.port, route, cookie, start_at, stop_at)
    time.sleep(max(0.0, start_at - time.time()))
    before = CpuSample(server, load.processes())
    time.sleep(max(0.0, stop_at - time.time()))
    cpu_used, other_pct = CpuSample(server, load.processes()).since(before)
    answers = load.collect()
    done = sum(a[0] for a in answers)
    latencies = sorted(lat for a in answers for lat in a[2])
    return {
        "rps": done / seconds,
        "requests": done,
        "errors": sum(a[1] for a in answers),
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan"),
        "p95_ms": 1000 * latencies[int(len(latencies) * 0.95)] if latencies else float("nan"),
        "cpu_ms_per_request": 1000 * cpu_used / done if done else float("nan"),
        "other_pct": other_pct,
    }


# -- main ----------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Requests/s on a trivial authenticated route with async_lab installed vs without "
        "(same run, prefork, alternating rounds). Goal: ratio >= %.2f." % GOAL,
    )
    add = parser.add_argument
    add(
        "--conf",
        type=Path,
        default=REPO / ".dev" / "odoo.conf",
        help="base Odoo config: database server, addons path (default: %(default)s, from `make bootstrap`)",
    )
    add("--db-with", default="async_lab_bench_with", help="database with async_lab (default: %(default)s)")
    add(
        "--db-without",
        default="async_lab_bench_without",
        help="baseline database, with %s only (default: %%(default)s)" % BASELINE_MODULES,
    )
    add("--recreate", action="store_true", help="drop and recreate both databases first")
    add("--no-update", dest="update", action="store_false", help="reuse the WITH database without -u async_lab")
    add(
        "--aa",
        action="store_true",
        help="A/A check: both servers on the WITHOUT database, to see the bench's own bias and noise",
    )
    add("--drop", action="store_true", help="drop both databases at the end")
    add("--workers", type=int, default=2, help="HTTP workers per server (default: %(default)s)")
    add("--max-cron-threads", type=int, default=1, help="cron workers per server (default: %(default)s)")
    add("--log-level", default="warn", help="log_level of both servers (default: %(default)s)")
    add(
        "--route",
        default="/web/session/check",
        help="auth='user' JSON-RPC route the clients call (default: %(default)s)",
    )
    add("--clients", type=int, default=4, help="load generator processes (default: %(default)s)")
    add("--rounds", type=int, default=8, help="measured rounds per server (default: %(default)s)")
    add("--seconds", type=float, default=4.0, help="length of a measured round (default: %(default)s)")
    add("--warmup", type=float, default=1.0, help="unmeasured load before each round (default: %(default)s)")
    add(
        "--settle",
        type=float,
        default=5.0,
        help="an unmeasured round per server first, of this length (default: %(default)s)",
    )
    add(
        "--no-freeze",
        dest="freeze",
        action="store_false",
        help="keep the idle server running instead of freezing it (SIGSTOP) during the other's rounds",
    )
    add("--keep-logs", action="store_true", help="keep the servers' configs and logs")
    args = parser.parse_args(argv)
    for name in ("workers", "clients", "rounds"):
        if not 1 <= getattr(args, name) <= 64:
            parser.error("--%s must be between 1 and 64" % name)
    if not (1 <= args.seconds <= 600 and 0 <= args.warmup <= 60 and 0 <= args.settle <= 600):
        parser.error("--seconds must be in 1..600, --warmup in 0..60 and --settle in 0..600")
    if not 0 <= args.max_cron_threads <= 8:
        parser.error("--max-cron-threads must be between 0 and 8")
    if not args.conf.exists():
        parser.error("no Odoo config at %s: run `make bootstrap` first" % args.conf)
    return args


def print_table(rows):
    print(
        "\n%-5s %-8s %9s %8s %7s %8s %8s %10s %8s"
        % ("round", "side", "req/s", "requests", "errors", "p50 ms", "p95 ms", "CPU ms/req", "other %")
    )
    for i, (side, fig) in enumerate(rows, 1):
        print(
            "%-5d %-8s %9.1f %8d %7d %8.2f %8.2f %10.2f %8.1f"
            % (
                i,
                side,
                fig["rps"],
                fig["requests"],
                fig["errors"],
                fig["p50_ms"],
                fig["p95_ms"],
                fig["cpu_ms_per_request"],
                fig["other_pct"],
            )
        )
    print(
        "(CPU ms/req: the measured Odoo processes' CPU per request; other %: the machine's CPU "
        "used by work outside this run)"
    )


def report(rows, load_before):
    """Print the table, the medians and the ratios; return the ratio over all rounds.

    The ratio is the median of the ratios with/without of each two adjacent
    rounds (1-2, 2-3, 3-4...): adjacent rounds share the machine's state, and
    taking both orders (with then without, without then with) cancels a
    steady drift. "Quiet" keeps the rounds where other work took at most
    NOISY_OTHER_PCT of the machine.
    """
    print_table(rows)
    couples = [dict(pair) for pair in itertools.pairwise(rows) if pair[0][0] != pair[1][0]]
    print("\nload average before the run: %.2f" % load_before)
    print(
        "ratio with/without of each two adjacent rounds: %s"
        % ", ".join("%.3f" % (c["with"]["rps"] / c["without"]["rps"]) for c in couples)
    )
    results = {}
    for label, keep in (("all rounds", lambda fig: True), ("quiet rounds", quiet_round)):
        ratios = [c["with"]["rps"] / c["without"]["rps"] for c in couples if keep(c["with"]) and keep(c["without"])]
        if not ratios:
            print("%-12s: no two adjacent ones" % label)
            continue
        figs = {side: [f for s, f in rows if s == side and keep(f)] for side in ("with", "without")}
        rps = {side: statistics.median(f["rps"] for f in side_figs) for side, side_figs in figs.items()}
        cpu = {side: statistics.median(f["cpu_ms_per_request"] for f in side_figs) for side, side_figs in figs.items()}
        results[label] = statistics.median(ratios)
        print(
            "%-12s: median req/s with %.1f, without %.1f (ratio of the medians %.3f); median CPU ms/request "
            "with %.3f, without %.3f; RATIO %.3f (median of %d adjacent-round ratios)"
            % (
                label,
                rps["with"],
                rps["without"],
                rps["with"] / rps["without"],
                cpu["with"],
                cpu["without"],
                results[label],
                len(ratios),
            )
        )
    ratio = results["all rounds"]
    print(
        "RATIO with/without: %.3f over all rounds, %s over quiet ones; goal >= %.2f: %s"
        % (
            ratio,
            "%.3f" % results["quiet rounds"] if "quiet rounds" in results else "n/a",
            GOAL,
            "met" if ratio >= GOAL else "NOT met",
        )
    )
    return ratio


def quiet_round(fig):
    return fig["other_pct"] <= NOISY_OTHER_PCT


def run_rounds(servers, cookies, load, args):
    """The settling rounds, then ``--rounds`` x (WITH, WITHOUT); returns [(side, figures)]."""

    def measure(side, seconds):
        if args.freeze:
            signal_group(servers["without" if side == "with" else "with"], signal.SIGSTOP)
        signal_group(servers[side], signal.SIGCONT)
        return run_round(load, servers[side], args.route, cookies[side], warmup=args.warmup, seconds=seconds)

    # A fresh server has one-off work in its first seconds (the cron worker's
    # first pass, the job runner's start): one unmeasured round each.
    for side in servers:
        measure(side, args.settle)
    rows = []
    for _i in range(args.rounds):
        for side in servers:
            fig = measure(side, args.seconds)
            rows.append((side, fig))
            print("round %d %-7s %8.1f req/s  (%d errors)" % (len(rows), side, fig["rps"], fig["errors"]), flush=True)
            if fig["requests"] == 0:
                raise RuntimeError("no request answered by %s" % servers[side].url)
    for server in servers.values():
        signal_group(server, signal.SIGCONT)
    return rows


def main(argv=None):
    args = parse_args(argv)
    params = db_params(args.conf)
    if args.recreate:
        for db in (args.db_with, args.db_without):
            drop_database(params, db)
    ensure_database(args.conf, params, args.db_without, with_async_lab=False)
    if args.aa:
        args.db_with = args.db_without
        print("A/A check: both servers serve %s, so 'with' is a second baseline server" % args.db_without)
    else:
        ensure_database(args.conf, params, args.db_with, with_async_lab=True, update=args.update)
    interrupt_on_sigterm()
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="async_lab_bench_overhead."))
    servers = {}
    load = None
    ok = False
    try:
        for side, db in (("with", args.db_with), ("without", args.db_without)):
            server = OdooServer(
                args.conf,
                db,
                tmp,
                workers=args.workers,
                max_cron_threads=args.max_cron_threads,
                options={"log_level": args.log_level},
            )
            servers[side] = server
            server.start()
        cookies = {}
        for side, server in servers.items():
            cookies[side] = server.session().cookies["session_id"]
            warm_up(server, args.route, cookies[side])
        print(
            "servers: with async_lab %s (master %s, db %s), without %s (master %s, db %s); "
            "%d workers each, %d clients, %d x %gs rounds per side"
            % (
                servers["with"].url,
                servers["with"].pid,
                args.db_with,
                servers["without"].url,
                servers["without"].pid,
                args.db_without,
                args.workers,
                args.clients,
                args.rounds,
                args.seconds,
            ),
            flush=True,
        )
        load = LoadGenerator(multiprocessing.get_context("spawn"), args.clients)
        rows = run_rounds(servers, cookies, load, args)
        report(rows, load_before)
        ok = True
    finally:
        if load:
            load.close()
        for server in servers.values():
            signal_group(server, signal.SIGCONT)  # a stopped group would not see SIGTERM
        end_bench(
            servers.values(),
            params,
            {args.db_with, args.db_without},
            tmp,
            ok=ok,
            drop=args.drop,
            keep=args.keep_logs,
            what="server configs and logs",
        )
    return 0


if __name__ == "__main__":
    run_bench(main)
