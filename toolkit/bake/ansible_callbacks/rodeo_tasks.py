"""Counts a playbook's tasks when it starts, for the bake's "task n of N".

Ansible's events say when a task starts, never how many there are.
``ansible-playbook --list-tasks`` would cost a second of every bake; this
callback runs inside the playbook run, counts the plays' compiled tasks
(about a millisecond) and writes ``task-count.json`` in ansible-runner's
artifacts folder, where the provision step reads it. The count is exact
unless a play includes tasks at run time (``include_tasks``,
``include_role``), whose tasks exist only once they run: then it is marked
``dynamic`` (shown as ``of ~N``). A play that matches no host starts no task.
"""

from __future__ import annotations

import json
import os

from ansible.playbook.block import Block
from ansible.plugins.callback import CallbackBase

DYNAMIC = {"include_tasks", "include_role", "ansible.builtin.include_tasks", "ansible.builtin.include_role"}


def count(items) -> tuple[int, bool]:
    """(tasks that start, any dynamic include) in compiled blocks; a block's rescue runs only on failure."""
    tasks, dynamic = 0, False
    for item in items:
        if isinstance(item, Block):
            for part in (item.block, item.always):
                n, dyn = count(part)
                tasks, dynamic = tasks + n, dynamic or dyn
        elif not getattr(item, "implicit", False):  # Ansible's own flush_handlers never starts as a task
            tasks += 1
            dynamic = dynamic or item.action in DYNAMIC
    return tasks, dynamic


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "rodeo_tasks"
    CALLBACK_NEEDS_ENABLED = False

    def v2_playbook_on_start(self, playbook) -> None:
        folder = os.environ.get("AWX_ISOLATED_DATA_DIR")  # ansible-runner's artifacts folder
        if not folder:
            return
        try:
            counts = [count(play.compile()) for play in playbook.get_plays()]
        except Exception:  # a count is a nicety: never fail a run for it
            return
        total = {"tasks": sum(n for n, _ in counts), "dynamic": any(dyn for _, dyn in counts)}
        path = os.path.join(folder, "task-count.json")
        with open(path + ".tmp", "w") as fh:
            json.dump(total, fh)
        os.replace(path + ".tmp", path)
