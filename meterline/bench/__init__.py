"""The benchmark behind ``meterline bench``: measured numbers for the DESIGN.md targets.

``run.run_bench`` makes a scratch database and Redis key prefix (``scratch``), measures
recording (``recording``: SDK and single-event quota checks; ``http_api``: ``POST /v1/events``),
loading (``loading``: stream -> Postgres) and the dbt transform (``transform``), and returns
plain numbers; ``report`` turns them into the table the CLI prints.

It sits beside ``meterline.cli`` at the top: it may import the domain packages and
``meterline.core``; only the CLI imports it.
"""
