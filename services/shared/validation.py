"""Rules for values that end up in file paths, environment variables and schedules.

The API rejects what breaks them; the operator checks again before a value reaches a pod, so that
nothing unvalidated is ever placed in a path or a command.
"""

from __future__ import annotations

import re

from croniter import croniter

# A plain file name: no path separators, no leading dot, no shell metacharacters or whitespace.
_SAFE_FILENAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# Set by the operator in every run pod (its run identity), or once were (MongoDB access, which modules no
# longer get): a launch may not set them, so that no credential is passed to a module in plain text.
RESERVED_ENV_NAMES = frozenset(
    {
        "RUN_INDEX",
        "RUN_ID",
        "JOB_NAME",
        "SERVICE_ID",
        "JOB_COMPLETION_INDEX",
        "MONGODB_HOST",
        "MONGODB_PORT",
        "MONGODB_USERNAME",
        "MONGODB_PASSWORD",
    }
)


def is_safe_filename(name: str) -> bool:
    return bool(_SAFE_FILENAME.fullmatch(name)) and ".." not in name


def is_env_name(name: str) -> bool:
    return len(name) <= 256 and bool(_ENV_NAME.fullmatch(name))


def is_cron(expression: str) -> bool:
    """Five-field cron as Kubernetes CronJobs take it (macros such as @daily included)."""
    if "\n" in expression or len(expression) > 256:
        return False
    macros = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
    if expression.strip() in macros:
        return True
    return len(expression.split()) == 5 and croniter.is_valid(expression)
