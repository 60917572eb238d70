"""The error of a task, recipe or cohort the user can fix (bad data, bad settings)."""
from __future__ import annotations


class TaskError(Exception):
    """Printed by the CLI without a traceback; the service never sees one (it never trains)."""
