# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The addon's groups, by XML id (defined in ``security/async_lab_groups.xml``).

Users read the lab; Managers, who also are Users, create load: they launch
bursts and experiments, cancel and reset them.
"""

GROUP_USER = "async_lab.async_lab_group_user"
GROUP_MANAGER = "async_lab.async_lab_group_manager"
#: queue_job's group: its managers read every job, the lab's and the others.
GROUP_QUEUE_JOB_MANAGER = "queue_job.group_queue_job_manager"
