/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {registry} from "@web/core/registry";

/**
 * Run by tests/test_dashboard.py (TestClickThroughTour): what a user clicks,
 * checking that every figure is true. Launch two bursts (jobs that succeed,
 * jobs that fail), watch them on the dashboard, open a count (a list of that
 * many rows, saying why with its facets), open a job, re-run an experiment
 * (asked first, its state followed live). On the way, no figure of the
 * dashboard is negative, and none is above its ideal without saying why.
 */
const IO = "root.async_lab.io";
const CPU = "root.async_lab.cpu";
const DONE_JOBS = 3;
const FAILED_JOBS = 2;

function fail(message) {
    throw new Error(`async_lab click-through: ${message}`);
}

/** No negative figure, no speedup above its ideal without its explanation. */
function checkFigures() {
    for (const cell of document.querySelectorAll(".o_async_lab_latency_cell")) {
        for (const key of ["p50", "p95"]) {
            const value = cell.dataset[key];
            if (value !== undefined && value !== "" && Number(value) < 0) {
                fail(`stage ${cell.dataset.stage} has a negative ${key}: ${value}`);
            }
        }
    }
    for (const counter of document.querySelectorAll(".o_async_lab_counter_value")) {
        if (Number(counter.textContent.replace(/[^\d.-]/g, "")) < 0) {
            fail(`a counter is negative: ${counter.textContent}`);
        }
    }
    for (const row of document.querySelectorAll(".o_async_lab_speedup[data-speedup]")) {
        const above =
            Math.round(Number(row.dataset.speedup) * 100) / 100 >
            Number(row.dataset.ideal);
        const explained =
            row.querySelector(".o_async_lab_above_ideal") &&
            row
                .querySelector(".o_async_lab_verdict")
                ?.textContent.includes("above the ideal");
        if (above && !explained) {
            fail(`${row.dataset.strategy} is above its ideal without an explanation`);
        }
    }
}

/** The list shows exactly ``count`` rows. */
function checkRows(count) {
    const rows = document.querySelectorAll(".o_list_view .o_data_row").length;
    if (rows !== count) {
        fail(`the count said ${count}, its list has ${rows} rows`);
    }
}

function launchSteps(workload, count, channel, extra = []) {
    return [
        {
            content: `Choose ${workload}`,
            trigger: ".o_async_lab_burst_form select[name=workload]",
            run: `text ${workload}`,
        },
        ...extra,
        {
            content: `${count} jobs`,
            trigger: ".o_async_lab_burst_form input[name=count]",
            run: `text ${count}`,
        },
        {
            content: `in ${channel}`,
            trigger: ".o_async_lab_burst_form select[name=channel]",
            run: `text ${channel}`,
        },
        {
            content: "Launch the burst",
            trigger: ".o_async_lab_launch_burst:not([disabled])",
            run: "click",
        },
        {
            content: "The burst is launched",
            trigger: `.o_async_lab_launch_result[data-kind=burst]:contains(${count} jobs on ${channel})`,
            isCheck: true,
        },
    ];
}

function countSteps(channel, state, count, facet) {
    const row = `.o_async_lab_channel_row[data-channel="${channel}"]`;
    return [
        {
            content: `Open the ${state} count of ${channel}`,
            trigger: `${row}[data-${state}="${count}"] a.o_async_lab_count_${state}`,
            run: "click",
        },
        {
            content: "The list says why it has these rows",
            trigger: `.o_searchview_facet:contains(${facet})`,
            isCheck: true,
        },
        {
            content: `It has ${count} rows, as the count said`,
            trigger: `.o_list_view .o_data_row:nth-child(${count})`,
            run: () => checkRows(count),
        },
    ];
}

const backToDashboard = {
    content: "Back to the dashboard",
    trigger: ".o_breadcrumb .breadcrumb-item:first-child a",
    run: "click",
};

registry.category("web_tour.tours").add("async_lab_click_through_tour", {
    test: true,
    steps: () => [
        {
            content: "The dashboard is open, with the lab panel of the last experiment",
            trigger: ".o_async_lab_lab .o_async_lab_speedup[data-strategy=processes]",
            run: checkFigures,
        },
        {
            content: "A speedup above its ideal says why",
            trigger:
                ".o_async_lab_speedup[data-above-ideal='1'] .o_async_lab_above_ideal",
            isCheck: true,
        },
        ...launchSteps("io_sleep", DONE_JOBS, IO, [
            {
                content: "Each job sleeps 20 ms",
                trigger: ".o_async_lab_burst_form input[name=ms]",
                run: "text 20",
            },
        ]),
        {
            content: "Watch: its jobs are done and counted",
            trigger: `.o_async_lab_channel_row[data-channel="${IO}"][data-done="${DONE_JOBS}"][data-pending="0"][data-started="0"]`,
            isCheck: true,
            timeout: 30000,
        },
        ...launchSteps("fail", FAILED_JOBS, CPU),
        {
            content: "Watch: the jobs that fail are counted",
            trigger: `.o_async_lab_channel_row[data-channel="${CPU}"][data-failed="${FAILED_JOBS}"][data-pending="0"]`,
            isCheck: true,
            timeout: 30000,
        },
        {
            content: "The launch message goes once it is no longer news",
            trigger:
                ".o_async_lab_launch:not(:has(.o_async_lab_launch_result)) .o_async_lab_burst_form",
            isCheck: true,
            timeout: 30000,
        },
        {
            content: "The timeline counts the failed jobs: they ran",
            trigger: `.o_async_lab_legend_item[data-channel="${CPU}"]:not([data-peak="0"])`,
            isCheck: true,
        },
        {
            content: "Click a failed job's bar on the timeline",
            trigger: `.o_async_lab_bar[data-channel="${CPU}"][data-state="failed"]`,
            run: "click",
        },
        {
            content: "The timeline says why: it failed, with its exception's last line",
            trigger:
                ".o_async_lab_why[data-code=failed] .o_async_lab_why_message:contains(Failed on try)",
            isCheck: true,
        },
        {
            content: "The capacity advisor answered, without an error",
            trigger:
                ".o_async_lab_advisor:not(:has(.o_async_lab_advisor_error)) .card-body:not(:contains(Checking))",
            isCheck: true,
        },
        {
            content:
                "The stage latency of the done jobs is shown, and no figure is negative",
            trigger: `.o_async_lab_latency_row[data-channel="${IO}"]`,
            run: checkFigures,
        },
        ...countSteps(IO, "done", DONE_JOBS, "Done in the last hour"),
        {
            content: "Open a job",
            trigger: ".o_list_view .o_data_row:first-child td.o_data_cell",
            run: "click",
        },
        {
            content: "Its form shows it done",
            trigger:
                ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Done)",
            isCheck: true,
        },
        {
            content: "Its form says why: done, with the time of each stage",
            trigger: ".o_form_view .o_async_lab_why:contains(Done: it waited)",
            isCheck: true,
        },
        backToDashboard,
        ...countSteps(CPU, "failed", FAILED_JOBS, "Started in the last hour"),
        backToDashboard,
        {
            content: "Open the last experiment",
            trigger: ".o_async_lab_experiment_link",
            run: "click",
        },
        {
            content: "Run it again",
            trigger: ".o_form_view button.o_async_lab_run_again",
            run: "click",
        },
        {
            content: "Asked first: its results will be replaced",
            trigger: ".modal-body:contains(deletes its results)",
            isCheck: true,
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Its state follows the run live",
            trigger: ".o_form_view .o_async_lab_live_state",
            isCheck: true,
        },
        {
            content: "…until it is done, without a reload",
            trigger:
                ".o_form_view:not(:has(.o_async_lab_live_state)) .o_statusbar_status button.o_arrow_button_current:contains(Done)",
            isCheck: true,
            timeout: 30000,
        },
    ],
});
