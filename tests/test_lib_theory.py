# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import BaseCase

from ..lib import theory
from .common import assert_doctests


class TestTheory(BaseCase):
    """lib/theory.py: the ideal speedups and the verdicts."""

    def test_doctests(self):
        assert_doctests(self, theory)

    def test_ideal_speedup_table(self):
        # strategy, kind, tasks, cores, pool_size, capacity -> ideal
        cases = [
            ("sequential", "io", 8, 2, 1, None, 1),
            ("sequential", "cpu_gil", 8, 2, 8, None, 1),
            ("threads", "io", 8, 2, 8, None, 8),
            ("threads", "io", 8, 2, 4, None, 4),
            ("threads", "io", 3, 2, 8, None, 3),
            ("asyncio", "io", 8, 2, 8, None, 8),
            ("processes", "io", 8, 2, 4, None, 4),
            ("queue_job", "io", 8, 2, 1, 4, 4),
            ("queue_job", "io", 2, 2, 1, 4, 2),
            ("queue_job", "io", 8, 2, 8, None, 1),
            ("threads", "cpu_gil", 8, 4, 8, None, 1),
            ("asyncio", "cpu_gil", 8, 4, 8, None, 1),
            ("processes", "cpu_gil", 8, 4, 8, None, 4),
            ("processes", "cpu_gil", 8, 4, 2, None, 2),
            ("processes", "cpu_gil", 3, 4, 8, None, 3),
            ("queue_job", "cpu_gil", 8, 2, 1, 4, 2),
            ("queue_job", "cpu_gil", 8, 8, 1, 4, 4),
            ("threads", "cpu_nogil", 8, 4, 8, None, 4),
            ("asyncio", "cpu_nogil", 8, 4, 2, None, 2),
            ("processes", "cpu_nogil", 2, 4, 8, None, 2),
            ("queue_job", "cpu_nogil", 8, 2, 1, 4, 2),
            ("threads", "control", 8, 2, 8, None, 1),
            ("queue_job", "control", 8, 2, 1, 4, 1),
        ]
        for strategy, kind, tasks, cores, pool_size, capacity, ideal in cases:
            with self.subTest(strategy=strategy, kind=kind, tasks=tasks, cores=cores, pool_size=pool_size):
                self.assertEqual(theory.ideal_speedup(strategy, kind, tasks, cores, pool_size, capacity), ideal)

    def test_ideal_speedup_refuses_unknown_names(self):
        with self.assertRaisesRegex(ValueError, "unknown strategy 'fibers'"):
            theory.ideal_speedup("fibers", "io", 8, 2, 8)
        with self.assertRaisesRegex(ValueError, "unknown kind of work 'gpu'"):
            theory.ideal_speedup("threads", "gpu", 8, 2, 8)

    def test_verdicts(self):
        cases = [
            (("threads", "io", 7.8, 8, 2), "threads 7.8× of 8 on I/O-bound work: waiting overlaps"),
            (("asyncio", "io", 7.9, 8, 2), "asyncio 7.9× of 8 on I/O-bound work: one event loop"),
            (("threads", "cpu_gil", 0.97, 1, 2), "threads 1.0× on CPU-bound Python: the GIL serialises bytecode"),
            (("asyncio", "cpu_gil", 1.0, 1, 2), "asyncio 1.0× on CPU-bound Python: the GIL serialises bytecode"),
            (("processes", "cpu_gil", 1.9, 2, 2), "processes 1.9× of 2 cores: true parallelism"),
            (("processes", "cpu_gil", 3.6, 4, 8), "processes 3.6× of 4: true parallelism"),
            (("threads", "cpu_nogil", 1.9, 2, 2), "threads 1.9× of 2 cores: hashlib releases the GIL"),
            (("queue_job", "cpu_gil", 1.8, 2, 2), "queue_job 1.8× of 2 cores: jobs run in separate Odoo worker"),
            (("processes", "cpu_gil", 0.9, 2, 2), "processes 0.9× of 2 cores: far below ideal; sending tasks"),
            (("threads", "io", 2.0, 8, 2), "threads 2.0× of 8 on I/O-bound work: far below ideal; the tasks contend"),
            (("queue_job", "io", 1.1, 4, 2), "queue_job 1.1× of 4 on I/O-bound work: far below ideal; jobs waited"),
            (("processes", "cpu_gil", 1.0, 1, 1), "processes 1.0× of 1 core: nothing could overlap, a single core"),
            (("threads", "io", 1.0, 1, 2), "threads 1.0× of 1 on I/O-bound work: nothing could overlap"),
            (("threads", "control", 3.0, 1, 2), "threads 3.0× on a control workload"),
            (("sequential", "cpu_gil", 1.0, 1, 2), "sequential 1.0×: the baseline"),
        ]
        for arguments, expected in cases:
            with self.subTest(arguments=arguments):
                self.assertTrue(theory.verdict(*arguments).startswith(expected), theory.verdict(*arguments))

    def test_one_formatting_of_speedups(self):
        # 1.05 read "1.1× of 1×" in the lab panel and "1.0× of 1" in the
        # verdict: the verdict, the panel's labels and the results' form all
        # format the stored value with format_speedup.
        self.assertEqual(theory.format_speedup(1.05), "1.1×")
        self.assertEqual(theory.format_speedup(1.0498), "1.1×", "stored as 1.05, read as 1.1 everywhere")
        self.assertTrue(theory.verdict("processes", "cpu_gil", 1.0498, 2, 2).startswith("processes 1.1× of 2 cores"))
        text = theory.verdict("queue_job", "io", 0.5, 4, 2, expected_speedup=1.0449, because="x")
        self.assertTrue(text.startswith("queue_job 0.5× of 4 on I/O-bound work, 1.0× expected"), text)

    def test_above_the_ideal_is_explained(self):
        text = theory.verdict("asyncio", "cpu_nogil", 2.4, 2, 2, baseline_cpu_share=0.35)
        self.assertIn("above the ideal", text)
        self.assertIn("35 %", text)
        self.assertIn("above the ideal", theory.verdict("processes", "cpu_gil", 2.2, 2, 2))
        self.assertNotIn("above the ideal", theory.verdict("processes", "cpu_gil", 2.0, 2, 2))
