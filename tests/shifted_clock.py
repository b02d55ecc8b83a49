"""Run the ``meterline`` CLI with the interpreter's clock moved to another instant.

    python tests/shifted_clock.py 2028-02-29T23:30:00Z demo --tenants 5
    python tests/shifted_clock.py --frozen 2027-03-10T12:05:00Z demo --tenants 6

The clock starts at the instant and keeps ticking (time-machine), so the CLI, Dagster and every
"now" in the process see that day, as a user's machine on that day would; with ``--frozen`` it
stays at the instant (a run whose every "now" is the same, for snapshots). Child processes (dbt)
get the instant through METERLINE_AS_OF. For a whole process tree, embedded servers included,
use libfaketime instead: ``faketime '2028-02-29 23:30:00' meterline demo``.
"""

from __future__ import annotations

import sys
from datetime import datetime

import time_machine

if __name__ == "__main__":
    frozen = sys.argv[1] == "--frozen"
    args = sys.argv[2:] if frozen else sys.argv[1:]
    instant = datetime.fromisoformat(args[0].replace("Z", "+00:00"))
    sys.argv = ["meterline", *args[1:]]
    with time_machine.travel(instant, tick=not frozen):
        from meterline.cli.app import main

        main()
