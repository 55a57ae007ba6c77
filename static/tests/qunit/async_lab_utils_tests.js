/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {
    formatAge,
    formatDuration,
    formatMiB,
    formatPercent,
    formatPercentiles,
} from "@async_lab/utils/format";
import {
    barGeometry,
    layoutLane,
    packRows,
    fitRange,
    peakConcurrency,
    timeTicks,
} from "@async_lab/utils/lanes";
import {channelColors} from "@async_lab/utils/colors";
import {MIN_REFRESH_GAP, trailingRefreshDelay} from "@async_lab/dashboard/live_updates";
import {evidenceItems} from "@async_lab/advisor_panel/advisor_panel";

// Run by tests/test_dashboard.py (TestDashboardQUnit) with ?filter=async_lab.
QUnit.module("async_lab", () => {
    QUnit.module("format", () => {
        QUnit.test("durations at a precision that suits their size", (assert) => {
            assert.strictEqual(formatDuration(null), "–");
            assert.strictEqual(formatDuration(0), "0 ms");
            assert.strictEqual(formatDuration(0.0004), "<1 ms");
            assert.strictEqual(formatDuration(0.0042), "4 ms");
            assert.strictEqual(formatDuration(0.9996), "1 s");
            assert.strictEqual(formatDuration(1.25), "1.25 s");
            assert.strictEqual(formatDuration(12.34), "12.3 s");
            assert.strictEqual(formatDuration(60), "1 min");
            assert.strictEqual(formatDuration(75), "1 min 15 s");
            assert.strictEqual(formatDuration(7260), "2 h 1 min");
        });

        QUnit.test("percentiles as p50 / p95", (assert) => {
            assert.strictEqual(
                formatPercentiles({p50: 0.12, p95: 1.5}),
                "120 ms / 1.5 s"
            );
            assert.strictEqual(formatPercentiles({p50: null, p95: null}), "–");
            assert.strictEqual(formatPercentiles(undefined), "–");
            assert.strictEqual(formatPercentiles({p50: 2, p95: null}), "2 s / –");
        });

        QUnit.test("ages, memory and CPU", (assert) => {
            assert.strictEqual(formatAge(44.6), "45 s");
            assert.strictEqual(formatAge(12 * 60 + 5), "12 min");
            assert.strictEqual(formatAge(3 * 3600 + 20 * 60), "3 h 20 min");
            assert.strictEqual(formatAge(2 * 86400 + 4 * 3600), "2 d 4 h");
            assert.strictEqual(formatAge(-3), "0 s");
            assert.strictEqual(formatMiB(81.54), "81.5 MiB");
            assert.strictEqual(formatMiB(812.4), "812 MiB");
            assert.strictEqual(formatMiB(1229), "1.2 GiB");
            assert.strictEqual(formatPercent(12.5), "12.5 %");
            assert.strictEqual(formatPercent(187.4), "187 %");
            assert.strictEqual(formatPercent(null), "–");
        });
    });

    QUnit.module("lanes", () => {
        QUnit.test(
            "packRows uses as many rows as jobs overlap, and no more",
            (assert) => {
                const jobs = [
                    {id: "a", start: 0, end: 10},
                    {id: "b", start: 2, end: 5},
                    {id: "c", start: 5, end: 8}, // starts when b ends: b's row
                    {id: "d", start: 3, end: 4}, // a and b are running: a third row
                    {id: "e", start: 10, end: 12}, // a ended: first row again
                ];
                const {rows, placed} = packRows(jobs);
                const rowOf = Object.fromEntries(
                    placed.map(({item, row}) => [item.id, row])
                );
                assert.strictEqual(rows, 3);
                assert.deepEqual(rowOf, {a: 0, b: 1, d: 2, c: 1, e: 0});
                assert.strictEqual(peakConcurrency(jobs), rows);
                // No two jobs of a row overlap.
                for (const {item, row} of placed) {
                    for (const other of placed) {
                        if (other.item !== item && other.row === row) {
                            assert.ok(
                                other.item.end <= item.start ||
                                    item.end <= other.item.start
                            );
                        }
                    }
                }
                assert.deepEqual(packRows([]), {rows: 0, placed: []});
            }
        );

        QUnit.test(
            "a serial channel never overlaps itself: one row, peak 1",
            (assert) => {
                const serial = [0, 1, 2, 3].map((i) => ({
                    start: i * 100,
                    end: (i + 1) * 100,
                }));
                assert.strictEqual(packRows(serial).rows, 1);
                assert.strictEqual(peakConcurrency(serial), 1);
                assert.strictEqual(
                    peakConcurrency([...serial, {start: 50, end: 60}]),
                    2
                );
                assert.strictEqual(peakConcurrency([]), 0);
            }
        );

        QUnit.test("a fitted timeline starts just before its first job", (assert) => {
            // A 20 s burst 8 minutes into a 10 minute timeline: it fills the width.
            const since = 0;
            const until = 600_000;
            assert.strictEqual(
                fitRange([480_000, 490_000], since, until),
                480_000 - 6_000
            );
            assert.strictEqual(
                fitRange([599_900], since, until),
                599_900 - 1000,
                "at least a second"
            );
            assert.strictEqual(
                fitRange([100], since, until),
                0,
                "never before the window"
            );
            assert.strictEqual(fitRange([], since, until), 0);
        });

        QUnit.test("failed jobs ran: instants count in the peak", (assert) => {
            // Three jobs that failed at once (no known end: start = end).
            const failed = [100, 100, 100].map((t) => ({start: t, end: t}));
            assert.strictEqual(peakConcurrency(failed), 3);
            assert.strictEqual(
                peakConcurrency([
                    {start: 100, end: 100},
                    {start: 200, end: 200},
                ]),
                1
            );
            // An instant inside a running interval overlaps it, not at its edges.
            assert.strictEqual(
                peakConcurrency([
                    {start: 0, end: 50},
                    {start: 20, end: 20},
                ]),
                2
            );
            assert.strictEqual(
                peakConcurrency([
                    {start: 0, end: 50},
                    {start: 50, end: 50},
                ]),
                1
            );
        });

        QUnit.test(
            "bar geometry is clamped to the timeline and stays visible",
            (assert) => {
                assert.deepEqual(barGeometry(250, 500, 0, 1000), {left: 25, width: 25});
                // Started before the window: cut at its left edge.
                assert.deepEqual(barGeometry(-500, 100, 0, 1000), {left: 0, width: 10});
                // A 1 ms job keeps the minimum width; a bar never runs past the end.
                assert.deepEqual(barGeometry(500, 501, 0, 1000), {
                    left: 50,
                    width: 0.25,
                });
                assert.deepEqual(barGeometry(900, 2000, 0, 1000), {
                    left: 90,
                    width: 10,
                });
            }
        );

        QUnit.test(
            "layoutLane places running jobs up to the end of the timeline",
            (assert) => {
                const t0 = Date.parse("2026-01-01T10:00:00Z");
                const t1 = Date.parse("2026-01-01T10:10:00Z");
                const {rows, bars} = layoutLane(
                    [
                        {
                            id: 1,
                            start: "2026-01-01T10:01:00Z",
                            end: "2026-01-01T10:02:00Z",
                        },
                        {id: 2, start: "2026-01-01T10:05:00Z", end: null},
                        {
                            id: 3,
                            start: "2026-01-01T10:06:00Z",
                            end: "2026-01-01T10:07:00Z",
                        },
                    ],
                    t0,
                    t1
                );
                assert.strictEqual(
                    rows,
                    2,
                    "job 3 runs while job 2 runs: a threaded process"
                );
                const byId = Object.fromEntries(bars.map((bar) => [bar.job.id, bar]));
                assert.deepEqual(
                    [byId[1].left, byId[1].width, byId[1].row, byId[1].running],
                    [10, 10, 0, false]
                );
                assert.deepEqual(
                    [byId[2].left, byId[2].width, byId[2].running],
                    [50, 50, true]
                );
                assert.strictEqual(byId[3].row, 1);
            }
        );

        QUnit.test("axis ticks fall on round times, ten at most", (assert) => {
            const t0 = Date.parse("2026-01-01T10:00:30Z");
            const ten = timeTicks(t0, t0 + 10 * 60000);
            assert.deepEqual(
                [ten.length, ten[0].step],
                [10, 60],
                "every minute over ten minutes"
            );
            assert.strictEqual(
                new Date(ten[0].time).toISOString(),
                "2026-01-01T10:01:00.000Z"
            );
            assert.ok(ten.every((tick) => tick.left >= 0 && tick.left <= 100));
            const hour = timeTicks(t0, t0 + 60 * 60000);
            assert.deepEqual(
                [hour.length, hour[0].step],
                [6, 600],
                "every 10 minutes over an hour"
            );
            const minute = timeTicks(t0 + 5000, t0 + 65000);
            assert.deepEqual(
                [minute.length, minute[0].step],
                [6, 10],
                "every 10 seconds over a minute"
            );
            assert.strictEqual(
                new Date(minute[0].time).toISOString(),
                "2026-01-01T10:00:40.000Z"
            );
        });

        QUnit.test("channel colours are stable whatever the order", (assert) => {
            const a = channelColors(["root.b", "root.a", "root"]);
            const b = channelColors(["root", "root.a", "root.b", "root.a"]);
            assert.deepEqual(a, b);
            assert.strictEqual(new Set(Object.values(a)).size, 3);
        });
    });
    QUnit.module("live updates", () => {
        QUnit.test(
            "a throttled job notification asks for one more refresh after its silence",
            (assert) => {
                assert.strictEqual(
                    trailingRefreshDelay({kind: "job", settle_ms: 4000}),
                    4000 + MIN_REFRESH_GAP
                );
                assert.strictEqual(trailingRefreshDelay({kind: "burst"}), null);
                assert.strictEqual(
                    trailingRefreshDelay({kind: "job", settle_ms: 0}),
                    null
                );
                assert.strictEqual(
                    trailingRefreshDelay({kind: "job", settle_ms: "soon"}),
                    null
                );
                assert.strictEqual(trailingRefreshDelay(undefined), null);
            }
        );
    });
    QUnit.module("advisor", () => {
        QUnit.test("a finding's evidence as short key: value strings", (assert) => {
            assert.deepEqual(
                evidenceItems({
                    root_capacity: 3,
                    server_wide_modules: ["base", "web"],
                    late: [{cron: "a"}, {cron: "b"}],
                    drain_seconds: null,
                }),
                [
                    "root capacity: 3",
                    "server wide modules: base, web",
                    "late: 2",
                    "drain seconds: –",
                ]
            );
            assert.deepEqual(evidenceItems(undefined), []);
        });
    });
});
