# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""queue_job channel arithmetic, on the runner's parsed configuration.

``configs`` maps channel names to the dicts that queue_job's
``ChannelManager.parse_simple_config`` returns (name, capacity, ...).
"""


def effective_capacity(configs, channel):
    """How many jobs of ``channel`` may run at once.

    A channel is bounded by its own capacity and by each ancestor's (a
    child's running jobs count against its parent). A channel that is not
    configured has no bound of its own. None means unbounded, which only
    happens when not even ``root`` is configured.

    >>> conf = {"root": {"capacity": 4}, "root.a": {"capacity": 2}, "root.a.s": {"capacity": 1}}
    >>> effective_capacity(conf, "root.a"), effective_capacity(conf, "root.a.s")
    (2, 1)
    >>> effective_capacity(conf, "root.a.other"), effective_capacity(conf, "root.b")
    (2, 4)
    >>> effective_capacity({"root": {"capacity": 8}, "root.a": {"capacity": 20}}, "root.a")
    8
    >>> effective_capacity({}, "root.a") is None
    True
    """
    parts = channel.split(".")
    bounds = []
    for depth in range(1, len(parts) + 1):
        config = configs.get(".".join(parts[:depth]))
        if config and config.get("capacity"):
            bounds.append(int(config["capacity"]))
    return min(bounds) if bounds else None
