/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";

import {formatDuration, formatPercentiles} from "../utils/format";

export const STAGES = [
    {
        key: "created_enqueued",
        label: _t("created → enqueued"),
        help: _t("waiting for the runner and for room in the channel"),
    },
    {
        key: "enqueued_started",
        label: _t("enqueued → started"),
        help: _t("waiting for a free HTTP worker"),
    },
    {key: "started_done", label: _t("started → done"), help: _t("running")},
];

/**
 * Where a job's time goes, per channel: p50 / p95 of each stage for the jobs
 * done in the window (figures of async_lab.stats), and the p50s as a bar.
 */
export class StageLatency extends Component {
    static template = "async_lab.StageLatency";
    static props = {
        channels: Array,
        colors: Object,
        method: {type: String, optional: true},
    };

    setup() {
        this.stages = STAGES;
        this.formatPercentiles = formatPercentiles;
    }

    get rows() {
        return this.props.channels.filter((channel) => channel.done > 0);
    }

    /** A stage measured from queue_job's enqueue time, which is to the second. */
    isCoarse(channel, stage) {
        return (
            !this.fromHistograms && (channel.latency_resolution?.[stage.key] || 0) >= 1
        );
    }

    get anyCoarse() {
        return this.rows.some((channel) =>
            STAGES.some((stage) => this.isCoarse(channel, stage))
        );
    }

    /** Percentiles from the rollups' histograms (windows over an hour): true to their bucket. */
    get fromHistograms() {
        return this.props.method === "histogram";
    }

    formatCell(channel, stage) {
        const text = formatPercentiles(channel.latency[stage.key]);
        return this.fromHistograms && channel.latency[stage.key].p50 !== null
            ? `≈ ${text}`
            : text;
    }

    resolutionText(channel, stage) {
        if (this.fromHistograms) {
            const bounds = channel.latency_bounds?.[stage.key] || {};
            const range = (pair) =>
                pair
                    ? `${formatDuration(pair[0])} – ${
                          pair[1] === null ? "∞" : formatDuration(pair[1])
                      }`
                    : "–";
            return _t(
                "%(stage)s: p50 between %(p50)s, p95 between %(p95)s (histogram buckets)",
                {
                    stage: stage.help,
                    p50: range(bounds.p50),
                    p95: range(bounds.p95),
                }
            );
        }
        return this.isCoarse(channel, stage)
            ? _t("%(stage)s: to the second (queue_job's enqueue time)", {
                  stage: stage.help,
              })
            : _t("%(stage)s: to the microsecond", {stage: stage.help});
    }

    /** The p50 of each stage as a share of their sum, for the stacked bar. */
    segments(channel) {
        const values = STAGES.map((stage) => channel.latency[stage.key].p50 || 0);
        const total = values.reduce((a, b) => a + b, 0);
        return STAGES.map((stage, index) => ({
            key: stage.key,
            width: total ? (values[index] / total) * 100 : 0,
            title: `${stage.label}: ${formatDuration(values[index])}`,
        }));
    }
}
