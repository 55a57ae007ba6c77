#!/usr/bin/env python3
# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Fail when the lint is not reproducible: a hook tool or pre-commit unpinned.

Run by pre-commit itself (hook ``lint-pins``, so by ``make lint`` and CI):

- every hook is local (remote hook repositories are not reachable here);
- every python or node hook pins each of its ``additional_dependencies`` to
  one exact version (``name==1.2.3``, ``name@1.2.3``);
- pre-commit uses the machine's node (``default_language_version.node:
  system``) rather than downloading one;
- ``tools/requirements-lint.txt`` pins pre-commit and its dependencies.

>>> unpinned("ruff==0.17.6"), unpinned("prettier@2.7.1"), unpinned("@prettier/plugin-xml@2.2.0")
(False, False, False)
>>> unpinned("ruff"), unpinned("ruff>=0.17"), unpinned("prettier@^2.7.1"), unpinned("@prettier/plugin-xml")
(True, True, True, True)
"""

import doctest
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
EXACT = re.compile(r"^(@[\w.-]+/)?[\w.-]+(==|@)\d+(\.\d+)*([.-]?\w+)?$")


def unpinned(requirement):
    return not EXACT.match(requirement.strip())


def problems(config, requirements):
    found = []
    if (config.get("default_language_version") or {}).get("node") != "system":
        found.append("default_language_version.node must be system (pre-commit would download node)")
    for repo in config.get("repos", []):
        if repo["repo"] not in ("local", "meta"):
            found.append("%s: remote hook repository; use a local hook" % repo["repo"])
        for hook in repo.get("hooks", []):
            deps = hook.get("additional_dependencies", [])
            if hook.get("language") in ("python", "node") and not deps:
                found.append("%s: no pinned additional_dependencies" % hook["id"])
            found += ["%s: %s is not pinned to one version" % (hook["id"], dep) for dep in deps if unpinned(dep)]
    for line in requirements.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and ("==" not in line or unpinned(line)):
            found.append("tools/requirements-lint.txt: %s is not pinned to one version" % line)
    return found


def main():
    if doctest.testmod().failed:  # the examples above: what counts as pinned
        return 1
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    found = problems(config, (REPO / "tools" / "requirements-lint.txt").read_text())
    for problem in found:
        sys.stderr.write(problem + "\n")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
