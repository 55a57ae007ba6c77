/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component, onMounted, onPatched, onWillUnmount, useRef} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";

const {DateTime} = luxon;

/**
 * Jobs done per minute and per channel over the statistics window, as
 * stacked bars (Chart.js, loaded by the dashboard with loadBundle).
 */
export class ThroughputChart extends Component {
    static template = "async_lab.ThroughputChart";
    static props = {
        series: Object,
        colors: Object,
        window: Number,
        period: {type: String, optional: true},
    };

    setup() {
        this.canvasRef = useRef("canvas");
        this.chart = null;
        onMounted(() => this.renderChart());
        onPatched(() => this.renderChart());
        onWillUnmount(() => this.chart?.destroy());
    }

    get channelNames() {
        return Object.keys(this.props.series.channels).sort();
    }

    get hasData() {
        return this.channelNames.some((name) =>
            this.props.series.channels[name].done.some((count) => count > 0)
        );
    }

    /** Minutes between two bars: 1 up to 6 hours, then 5, then 60 beyond a day. */
    get step() {
        return this.props.series.step_minutes || 1;
    }

    /** What a bar counts, in words. */
    get stepText() {
        if (this.step === 60) {
            return _t("per hour");
        }
        return this.step === 1
            ? _t("per minute")
            : _t("per %(step)s minutes", {step: this.step});
    }

    get periodText() {
        return (
            this.props.period ||
            _t("last %(minutes)s minutes", {minutes: this.props.window})
        );
    }

    get chartData() {
        // Beyond a day the bars span several days: show the day too.
        const format =
            this.props.window > 1440
                ? {weekday: "short", hour: "2-digit", minute: "2-digit"}
                : DateTime.TIME_24_SIMPLE;
        const labels = this.props.series.minutes.map((minute) =>
            DateTime.fromISO(minute).toLocaleString(format)
        );
        const datasets = this.channelNames.map((name) => ({
            label: name,
            data: this.props.series.channels[name].done,
            backgroundColor: this.props.colors[name],
            borderWidth: 0,
            barPercentage: 1,
            categoryPercentage: 0.9,
        }));
        return {labels, datasets};
    }

    renderChart() {
        const canvas = this.canvasRef.el;
        if (!canvas) {
            return;
        }
        const data = this.chartData;
        if (this.chart && this.chart.canvas === canvas) {
            this.chart.data = data;
            this.chart.update("none");
            return;
        }
        this.chart?.destroy();
        this.chart = new Chart(canvas, {
            type: "bar",
            data,
            options: {
                animation: false,
                maintainAspectRatio: false,
                interaction: {mode: "index", intersect: false},
                plugins: {
                    legend: {position: "bottom", labels: {boxWidth: 12}},
                    tooltip: {
                        callbacks: {footer: (items) => this.tooltipFooter(items)},
                    },
                },
                scales: {
                    x: {
                        stacked: true,
                        grid: {display: false},
                        ticks: {maxTicksLimit: 13, autoSkip: true},
                    },
                    y: {
                        stacked: true,
                        beginAtZero: true,
                        ticks: {precision: 0},
                        title: {
                            display: true,
                            text: _t("jobs done %(step)s", {step: this.stepText}),
                        },
                    },
                },
            },
        });
    }

    tooltipFooter(items) {
        const total = items.reduce((sum, item) => sum + item.parsed.y, 0);
        if (this.step === 1) {
            return _t("%(count)s jobs in this minute", {count: total});
        }
        return this.step === 60
            ? _t("%(count)s jobs in this hour", {count: total})
            : _t("%(count)s jobs in these %(minutes)s minutes", {
                  count: total,
                  minutes: this.step,
              });
    }
}
