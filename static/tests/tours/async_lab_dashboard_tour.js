/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {registry} from "@web/core/registry";

/**
 * Run by tests/test_dashboard.py (TestDashboardTour): the dashboard shows the
 * test server's process, launches a small burst, and sees its jobs done in
 * the channel table and on the timeline. The test passes the PID to look
 * for in the URL (?async_lab_pid=) and runs the jobs in a thread of its own
 * (no job runner in a test run).
 */
export const BURST_JOBS = "3";
export const BURST_CHANNEL = "root.async_lab.io";

registry.category("web_tour.tours").add("async_lab_dashboard_tour", {
    test: true,
    steps: () => {
        const pid = new URLSearchParams(window.location.search).get("async_lab_pid");
        const row = `.o_async_lab_channel_row[data-channel="${BURST_CHANNEL}"]`;
        return [
            {
                content: "The process map lists the process serving the test",
                trigger: `.o_async_lab_process_tree .o_async_lab_process[data-pid="${pid}"]`,
                isCheck: true,
            },
            {
                content:
                    "It is the threaded server (workers = 0) that served this refresh",
                trigger: `.o_async_lab_process[data-pid="${pid}"][data-role="threaded"]:contains(served this refresh)`,
                isCheck: true,
            },
            {
                content: "The throughput chart is drawn",
                trigger: ".o_async_lab_throughput canvas",
                isCheck: true,
            },
            {
                content: "Choose a short I/O workload",
                trigger: ".o_async_lab_burst_form select[name=workload]",
                run: "text io_sleep",
            },
            {
                content: "Each job sleeps 20 ms",
                trigger: ".o_async_lab_burst_form input[name=ms]",
                run: "text 20",
            },
            {
                content: `${BURST_JOBS} jobs`,
                trigger: ".o_async_lab_burst_form input[name=count]",
                run: `text ${BURST_JOBS}`,
            },
            {
                content: "In the I/O channel",
                trigger: ".o_async_lab_burst_form select[name=channel]",
                run: `text ${BURST_CHANNEL}`,
            },
            {
                content: "Launch the burst",
                trigger: ".o_async_lab_launch_burst:not([disabled])",
                run: "click",
            },
            {
                content: "The burst is launched",
                trigger: `.o_async_lab_launch_result[data-kind=burst]:contains(${BURST_JOBS} jobs on ${BURST_CHANNEL})`,
                isCheck: true,
            },
            {
                content: "Its jobs are done, and counted in the channel table",
                trigger: `${row}[data-done="${BURST_JOBS}"][data-pending="0"][data-enqueued="0"][data-started="0"]`,
                isCheck: true,
                timeout: 30000,
            },
            {
                content:
                    "They are on the timeline, in the lane of the process that ran them",
                trigger: `.o_async_lab_lane[data-pid="${pid}"] .o_async_lab_bar[data-channel="${BURST_CHANNEL}"][data-state=done]`,
                isCheck: true,
            },
            {
                content: "Show the figures of the last 7 days",
                trigger: ".o_async_lab_window button[data-minutes='10080']",
                run: "click",
            },
            {
                content: "The chart counts jobs per hour, over 7 days",
                trigger:
                    ".o_async_lab_throughput .card-header:contains(per hour):contains(last 7 days)",
                isCheck: true,
            },
            {
                content:
                    "The week's counts are exact: the burst's jobs, read from the rollups and the jobs",
                trigger: `${row}[data-done="${BURST_JOBS}"]`,
                isCheck: true,
            },
            {
                content:
                    "Its percentiles come from histograms, marked ≈ with their bounds",
                trigger: `.o_async_lab_latency_row[data-channel="${BURST_CHANNEL}"] .o_async_lab_latency_cell[data-stage=started_done]:contains(≈)`,
                isCheck: true,
            },
            {
                content: "Back to the last hour",
                trigger: ".o_async_lab_window button[data-minutes='60']",
                run: "click",
            },
            {
                content:
                    "The chart counts jobs per minute again, and the percentiles are exact",
                trigger:
                    ".o_async_lab_throughput .card-header:contains(per minute):contains(last hour)",
                extra_trigger:
                    ".o_async_lab_stage_latency:not(:has(.o_async_lab_latency_method))",
                isCheck: true,
            },
            {
                content: "The done count opens the matching jobs",
                trigger: `${row} a.o_async_lab_count_done`,
                run: "click",
            },
            {
                content: "The list shows the done jobs of the channel",
                trigger: `.o_list_view .o_data_row:nth-child(${BURST_JOBS})`,
                isCheck: true,
            },
        ];
    },
});
