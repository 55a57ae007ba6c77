/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
/**
 * Geometry of the swimlane timeline (no OWL, no services), tested by
 * static/tests/qunit/async_lab_utils_tests.js. Times are epoch milliseconds.
 */

/** Narrowest bar drawn, in % of the timeline: a 5 ms job stays visible. */
export const MIN_BAR_WIDTH = 0.25;

/**
 * Place intervals on as few rows as possible so that no two intervals of a
 * row overlap. Sorted by start, first fit needs exactly as many rows as the
 * most intervals open at one time. An interval that starts when another ends
 * does not overlap it (a serial channel's jobs share one row).
 *
 * @template {{start: number, end: number}} T
 * @param {T[]} intervals
 * @returns {{rows: number, placed: {item: T, row: number}[]}}
 */
export function packRows(intervals) {
    const sorted = [...intervals].sort((a, b) => a.start - b.start || a.end - b.end);
    const rowEnds = [];
    const placed = [];
    for (const item of sorted) {
        let row = rowEnds.findIndex((end) => end <= item.start);
        if (row === -1) {
            row = rowEnds.length;
            rowEnds.push(item.end);
        } else {
            rowEnds[row] = item.end;
        }
        placed.push({item, row});
    }
    return {rows: rowEnds.length, placed};
}

/**
 * The most intervals open at the same time. Touching intervals do not
 * overlap, but an instant (start = end: a failed job whose end is not known)
 * is open at that instant: it ran, so it counts.
 *
 * @param {{start: number, end: number}[]} intervals
 * @returns {number}
 */
export function peakConcurrency(intervals) {
    // At equal times: ends of intervals, then starts, then ends of instants.
    const END = 0;
    const START = 1;
    const INSTANT_END = 2;
    const events = [];
    for (const {start, end} of intervals) {
        events.push(
            [start, START],
            [Math.max(start, end), end > start ? END : INSTANT_END]
        );
    }
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let open = 0;
    let peak = 0;
    for (const [, kind] of events) {
        open += kind === START ? 1 : -1;
        peak = Math.max(peak, open);
    }
    return peak;
}

/**
 * Left offset and width of [start, end] on the timeline [t0, t1], in %.
 *
 * @param {number} start
 * @param {number} end
 * @param {number} t0
 * @param {number} t1
 * @returns {{left: number, width: number}}
 */
export function barGeometry(start, end, t0, t1) {
    const span = Math.max(1, t1 - t0);
    const from = Math.min(Math.max(start, t0), t1);
    const to = Math.min(Math.max(end, from), t1);
    const left = ((from - t0) / span) * 100;
    const width = Math.max(MIN_BAR_WIDTH, ((to - from) / span) * 100);
    return {left, width: Math.min(width, 100 - left)};
}

/**
 * Lay out one lane's jobs: each gets a row (jobs of one lane overlap only in
 * a threaded server, where one process runs several jobs in threads) and a
 * position. A running job (no end) extends to ``t1``.
 *
 * @param {{start: string, end: string|null}[]} jobs ISO dates
 * @param {number} t0
 * @param {number} t1
 * @returns {{rows: number, bars: {job: object, row: number, left: number, width: number, running: boolean}[]}}
 */
export function layoutLane(jobs, t0, t1) {
    const intervals = jobs.map((job) => {
        const start = Date.parse(job.start);
        const end = job.end ? Date.parse(job.end) : t1;
        return {job, start, end: Math.max(start, end), running: !job.end};
    });
    const {rows, placed} = packRows(intervals);
    const bars = placed.map(({item, row}) => ({
        job: item.job,
        row,
        running: item.running,
        ...barGeometry(item.start, item.end, t0, t1),
    }));
    return {rows, bars};
}

/**
 * Start of a timeline fitted to the jobs it shows: a little before the first
 * job's start (a twentieth of the span, at least a second), never before
 * ``since``; ``since`` when there is no job.
 *
 * @param {number[]} starts
 * @param {number} since
 * @param {number} until
 * @returns {number}
 */
export function fitRange(starts, since, until) {
    if (!starts.length) {
        return since;
    }
    const first = Math.min(...starts);
    const margin = Math.max(1000, (until - first) / 20);
    return Math.max(since, first - margin);
}

/** Tick spacings of the timeline axis, in seconds. */
const TICK_STEPS = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];

/**
 * Axis ticks of the timeline at round times, spaced to keep at most ten.
 *
 * @param {number} t0
 * @param {number} t1
 * @returns {{time: number, left: number, step: number}[]} ``step`` in seconds
 */
export function timeTicks(t0, t1) {
    const seconds = (t1 - t0) / 1000;
    const step = TICK_STEPS.find((s) => seconds / s <= 10) || 7200;
    const stepMs = step * 1000;
    const ticks = [];
    for (let time = Math.ceil(t0 / stepMs) * stepMs; time <= t1; time += stepMs) {
        ticks.push({time, step, left: ((time - t0) / (t1 - t0)) * 100});
    }
    return ticks;
}
