/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {browser} from "@web/core/browser/browser";
import {onMounted, onWillUnmount, useEnv} from "@odoo/owl";

/** Polling period while the bus brings no news (no websocket, e.g. not proxied). */
export const POLL_INTERVAL = 5000;
/** Polling period while bus notifications arrive: only a safety net then. */
export const BUS_POLL_INTERVAL = 30000;
/** The bus counts as live this long after its last notification. */
export const BUS_FRESH_FOR = 60000;
/** At most one refresh per this many ms, however many jobs finish. */
export const MIN_REFRESH_GAP = 1000;
export const NOTIFICATION_TYPE = "async_lab.refresh";

/**
 * How long after a notification to refresh once more, in ms, or null.
 *
 * The server throttles job notifications (one every ``settle_ms`` per
 * process at most): jobs that finish in the silence after the last one
 * only show if the dashboard looks again once that silence is over.
 *
 * @param {object} [payload] the notification's payload
 * @returns {number|null}
 */
export function trailingRefreshDelay(payload) {
    const settle = Number(payload && payload.settle_ms);
    return Number.isFinite(settle) && settle > 0 ? settle + MIN_REFRESH_GAP : null;
}

// bus_service.subscribe() cannot be undone in Odoo 17: subscribe once per
// bus service and dispatch to the dashboards currently mounted.
const listenersByBus = new WeakMap();

function listen(busService, channel, listener) {
    let listeners = listenersByBus.get(busService);
    if (!listeners) {
        listeners = new Set();
        listenersByBus.set(busService, listeners);
        busService.subscribe(NOTIFICATION_TYPE, (payload) => {
            for (const callback of listeners) {
                callback(payload);
            }
        });
    }
    listeners.add(listener);
    busService.addChannel(channel);
    return () => {
        listeners.delete(listener);
        if (!listeners.size) {
            busService.deleteChannel(channel);
        }
    };
}

/**
 * Call ``refresh`` when the server announces fresh figures on the bus
 * channel, and every few seconds as a fallback (the websocket may not be
 * reachable). Bursts of notifications are throttled to one refresh per
 * MIN_REFRESH_GAP, and a throttled job notification is followed by one more
 * refresh (trailingRefreshDelay); polling pauses while the tab is hidden.
 *
 * @param {() => Promise<any>} refresh must not reject
 * @param {string} channel bus channel to listen to
 * @returns {{ busLive: () => boolean }} whether bus notifications arrive
 */
export function useLiveUpdates(refresh, channel) {
    // Not useService: bus_service declares `async: true`, which useService
    // cannot wrap in Odoo 17 (core components read env.services too).
    const busService = useEnv().services.bus_service;
    let pollTimer = null;
    let busTimer = null;
    let trailTimer = null;
    let lastRefresh = 0;
    let lastNotification = 0;
    let stopListening = null;

    const busLive = () => Date.now() - lastNotification < BUS_FRESH_FOR;

    function run() {
        lastRefresh = Date.now();
        return refresh();
    }

    function schedulePoll() {
        browser.clearTimeout(pollTimer);
        const poll = () => {
            if (!document.hidden) {
                run();
            }
            schedulePoll();
        };
        pollTimer = browser.setTimeout(
            poll,
            busLive() ? BUS_POLL_INTERVAL : POLL_INTERVAL
        );
    }

    function onNotification(payload) {
        lastNotification = Date.now();
        const trailing = trailingRefreshDelay(payload);
        if (trailing !== null) {
            browser.clearTimeout(trailTimer);
            trailTimer = browser.setTimeout(() => {
                trailTimer = null;
                if (!document.hidden) {
                    run();
                }
            }, trailing);
        }
        if (busTimer !== null) {
            return; // a refresh is already due
        }
        const wait = Math.max(0, lastRefresh + MIN_REFRESH_GAP - Date.now());
        busTimer = browser.setTimeout(() => {
            busTimer = null;
            run();
        }, wait);
    }

    onMounted(() => {
        stopListening = listen(busService, channel, onNotification);
        schedulePoll();
    });
    onWillUnmount(() => {
        if (stopListening) {
            stopListening();
        }
        browser.clearTimeout(pollTimer);
        browser.clearTimeout(busTimer);
        browser.clearTimeout(trailTimer);
    });
    return {busLive};
}
