"""Delivery bookkeeping shared by every table of outgoing messages (``meterline.alerts``,
``meterline.invoice_events``): each row has ``delivery_status`` (pending, sent, failed,
skipped), ``attempts``, ``last_error`` and ``delivered_at``.

An attempt is counted before anything is sent, in its own committed transaction
(:func:`start_attempt`); the row is then locked (:func:`claim`, ``FOR UPDATE SKIP LOCKED``),
sent and marked (:func:`mark`) in one transaction. So a sent row is never sent again, two
runs never send the same row, and a run killed while sending still moves the count on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Row, text


@dataclass(frozen=True)
class Outbox:
    """A table of outgoing messages: its name, key column and the columns a claim reads.
    (Constants of the code, never input: they are written into the SQL.)"""

    table: str
    key: str
    columns: str


def start_attempt(engine: Engine, box: Outbox, row_id: int) -> int | None:
    """Count one attempt and leave a ``last_error`` that :func:`mark` replaces when the
    attempt ends. The attempt's number, or None when the row was sent meanwhile or another
    run holds it."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                f"""
                update {box.table}
                set attempts = attempts + 1,
                    last_error = 'attempt ' || (attempts + 1)
                                 || ' did not finish: the run stopped while sending'
                where {box.key} = (
                    select {box.key} from {box.table}
                    where {box.key} = :id and delivery_status in ('pending', 'failed')
                    for update skip locked)
                returning attempts
                """
            ),
            {"id": row_id},
        ).scalar()


def claim(conn: Connection, box: Outbox, row_id: int) -> Row | None:
    """Lock one row that still needs sending; None when it was sent meanwhile or another run
    holds it. The lock lasts until ``conn``'s transaction ends (after :func:`mark`)."""
    return conn.execute(
        text(
            f"""
            select {box.key}, {box.columns} from {box.table}
            where {box.key} = :id and delivery_status in ('pending', 'failed')
            for update skip locked
            """
        ),
        {"id": row_id},
    ).first()


def mark(conn: Connection, box: Outbox, row_id: int, status: str, detail: str) -> None:
    """End the attempt :func:`start_attempt` counted: ``sent`` (with ``delivered_at``),
    ``failed`` or ``skipped``."""
    conn.execute(
        text(
            f"""
            update {box.table}
            set delivery_status = :status,
                last_error = case when :status = 'sent' then null else :detail end,
                delivered_at = case when :status = 'sent' then now() else delivered_at end
            where {box.key} = :id
            """
        ),
        {"status": status, "detail": detail[:2000], "id": row_id},
    )
