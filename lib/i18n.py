# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Which folders of the addon Odoo's term export may scan.

Odoo's export (``odoo.tools.translate.TranslationModuleReader``) walks the
addon folder with ``os.walk(followlinks=True)`` and takes every ``.py`` file
in it, and every JS and XML file under ``static/src``. A dev checkout holds
more than the addon: ``.venv`` (all of site-packages), ``.dev`` (whose
``addons/async_lab`` links back to the checkout: a loop), and maybe
``node_modules`` or build folders. ``make pot`` and the test that compares
the template with the code both export through :func:`addon_walk`, so they
see the same files on every machine.

>>> import os, tempfile
>>> top = tempfile.mkdtemp()
>>> for d in ("models", ".venv/lib", ".dev/addons", "node_modules/x", "build/lib", "static/src"):
...     os.makedirs(os.path.join(top, d))
>>> sorted(os.path.relpath(root, top) for root, dirs, files in addon_walk(os.walk)(top))
['.', 'models', 'static', 'static/src']
"""

#: Folders never part of the addon: tools' and build outputs, and hidden ones (.venv, .dev, .git).
SKIPPED = frozenset({"node_modules", "build", "dist", "__pycache__"})


def is_addon_folder(name):
    """
    >>> [is_addon_folder(n) for n in ("models", ".venv", "node_modules", "static")]
    [True, False, False, True]
    """
    return not name.startswith(".") and name not in SKIPPED


def addon_walk(walk):
    """``walk`` (``os.walk``), descending only into addon folders."""

    def pruned(top, *args, **kwargs):
        for root, dirs, files in walk(top, *args, **kwargs):
            dirs[:] = [d for d in dirs if is_addon_folder(d)]
            yield root, dirs, files

    return pruned
