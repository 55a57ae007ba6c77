/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
/**
 * Plain formatting helpers of the dashboard (no OWL, no services), tested by
 * static/tests/qunit/async_lab_utils_tests.js.
 */

const DASH = "–";

function trim(number, decimals) {
    return Number(number.toFixed(decimals)).toString();
}

/**
 * How long a process has lived, coarse: "45 s", "12 min", "3 h 20 min", "2 d 4 h".
 *
 * @param {number|null|undefined} seconds
 * @returns {string}
 */
export function formatAge(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) {
        return DASH;
    }
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) {
        return `${s} s`;
    }
    const minutes = Math.floor(s / 60);
    if (minutes < 60) {
        return `${minutes} min`;
    }
    const hours = Math.floor(minutes / 60);
    if (hours < 24) {
        return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
    }
    const days = Math.floor(hours / 24);
    return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

/**
 * A duration in seconds, at a precision that suits its size.
 *
 *     formatDuration(0.0042) === "4 ms"
 *     formatDuration(1.25)   === "1.25 s"
 *     formatDuration(75)     === "1 min 15 s"
 *     formatDuration(null)   === "–"
 *
 * @param {number|null|undefined} seconds
 * @returns {string}
 */
export function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) {
        return DASH;
    }
    const abs = Math.abs(seconds);
    if (abs < 0.001) {
        return abs === 0 ? "0 ms" : "<1 ms";
    }
    if (abs < 0.9995) {
        return `${Math.round(seconds * 1000)} ms`;
    }
    if (abs < 10) {
        return `${trim(seconds, 2)} s`;
    }
    if (abs < 60) {
        return `${trim(seconds, 1)} s`;
    }
    const minutes = Math.floor(abs / 60);
    if (minutes < 60) {
        const rest = Math.round(abs - minutes * 60);
        return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
    }
    return formatAge(abs);
}

/**
 * A p50/p95 pair of durations: "120 ms / 1.5 s"; "–" when there is no sample.
 *
 * @param {{p50: number|null, p95: number|null}|null|undefined} latency
 * @returns {string}
 */
export function formatPercentiles(latency) {
    if (!latency || (latency.p50 === null && latency.p95 === null)) {
        return DASH;
    }
    return `${formatDuration(latency.p50)} / ${formatDuration(latency.p95)}`;
}

/**
 * Resident memory in MiB: "81.5 MiB", "1.2 GiB".
 *
 * @param {number|null|undefined} mib
 * @returns {string}
 */
export function formatMiB(mib) {
    if (mib === null || mib === undefined) {
        return DASH;
    }
    if (mib >= 1024) {
        return `${trim(mib / 1024, 1)} GiB`;
    }
    return `${trim(mib, mib >= 100 ? 0 : 1)} MiB`;
}

/**
 * A CPU share in percent (100 % = one core busy): "0 %", "12.5 %", "187 %".
 *
 * @param {number|null|undefined} percent
 * @returns {string}
 */
export function formatPercent(percent) {
    if (percent === null || percent === undefined) {
        return DASH;
    }
    return `${trim(percent, percent >= 100 ? 0 : 1)} %`;
}
