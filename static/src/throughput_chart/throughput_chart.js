/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import { Component, onMounted, onPatched, onWillUnmount, useRef } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";

const { DateTime } = luxon;

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

    get chartData() {
        const labels = this.props.series.minutes.map((minute) =>
            DateTime.fromISO(minute).toLocaleString(DateTime.TIME_24_SIMPLE)
        );
        const datasets = this.channelNames.map((name) => ({
            label: name,
            data: this.props.series.channels[name].done,
            backgroundColor: this.props.colors[name],
            borderWidth: 0,
            barPercentage: 1,
            categoryPercentage: 0.9,
        }));
        return { labels, datasets };
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
                interaction: { mode: "index", intersect: false },
                plugins: {
                    legend: { position: "bottom", labels: { boxWidth: 12 } },
                    tooltip: { callbacks: { footer: (items) => this.tooltipFooter(items) } },
                },
                scales: {
                    x: {
                        stacked: true,
                        grid: { display: false },
                        ticks: { maxTicksLimit: 13, autoSkip: true },
                    },
                    y: {
                        stacked: true,
                        beginAtZero: true,
                        ticks: { precision: 0 },
                        title: { display: true, text: _t("jobs done per minute") },
                    },
                },
            },
        });
    }

    tooltipFooter(items) {
        const total = items.reduce((sum, item) => sum + item.parsed.y, 0);
        return _t("%(count)s jobs in this minute", { count: total });
    }
}
