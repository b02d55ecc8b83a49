"""What each mart materialization tells the Dagster UI: rows, columns and where it lives.

Read from Postgres right after dbt built the mart, in the step's own thread (no thread pool,
no dbt adapter in this process): the exact row count, the table's columns as Postgres has them
(type, nullability, the comment dbt persisted from the yml) and a URI without credentials
(:func:`meterline.core.redaction.relation_uri`). The keys are Dagster's standard table metadata
(``dagster/row_count``, ``dagster/column_schema``, ``dagster/table_name``, ``dagster/uri``), so
the UI shows them in the asset's overview. dagster-dbt's ``fetch_row_counts()`` /
``fetch_column_metadata()`` were not used: they query through an in-process dbt adapter from
a thread pool and drop the metadata silently when that fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy import Engine, text

from meterline.core.redaction import relation_uri

MART_SCHEMA = "analytics"
TABLE_MATERIALIZATIONS = ("table", "incremental")

_COLUMNS = text(
    """
    select a.attname as name,
           pg_catalog.format_type(a.atttypid, a.atttypmod) as type,
           not a.attnotnull as nullable,
           pg_catalog.col_description(a.attrelid, a.attnum) as description
    from pg_catalog.pg_attribute as a
    where a.attrelid = cast(:relation as regclass) and a.attnum > 0 and not a.attisdropped
    order by a.attnum
    """
)
_PRIMARY_KEY = text(
    """
    select a.attname
    from pg_catalog.pg_constraint as c
    join pg_catalog.pg_attribute as a on a.attrelid = c.conrelid and a.attnum = any(c.conkey)
    where c.conrelid = cast(:relation as regclass) and c.contype = 'p'
    order by array_position(c.conkey, a.attnum)
    """
)


def mart_metadata(engine: Engine, database_url: str, table: str) -> dict[str, Any]:
    """Row count, column schema, table name and URI of ``analytics.<table>``."""
    relation = f"{MART_SCHEMA}.{table}"
    with engine.connect() as conn:
        columns = conn.execute(_COLUMNS, {"relation": relation}).all()
        primary_key = list(conn.execute(_PRIMARY_KEY, {"relation": relation}).scalars())
        rows = conn.execute(text(f'select count(*) from {MART_SCHEMA}."{table}"')).scalar_one()
        database = conn.execute(text("select current_database()")).scalar_one()
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type,
                description=c.description,
                constraints=dg.TableColumnConstraints(
                    nullable=c.nullable, unique=primary_key == [c.name]
                ),
            )
            for c in columns
        ],
        constraints=dg.TableConstraints(
            other=[f"primary key ({', '.join(primary_key)})"] if primary_key else []
        ),
    )
    return {
        "dagster/row_count": dg.MetadataValue.int(rows),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
        "dagster/table_name": dg.MetadataValue.text(f"{database}.{relation}"),
        "dagster/uri": dg.MetadataValue.text(relation_uri(database_url, relation)),
    }


@cache
def _mart_tables(manifest_path: str, modified: float) -> dict[str, str]:
    """dbt unique_id -> table name, for the marts dbt materializes as tables."""
    nodes = json.loads(Path(manifest_path).read_text())["nodes"]
    return {
        unique_id: node.get("alias") or node["name"]
        for unique_id, node in nodes.items()
        if node["resource_type"] == "model"
        and node["schema"] == MART_SCHEMA
        and node["config"].get("materialized") in TABLE_MATERIALIZATIONS
    }


def with_mart_metadata(
    events: Iterable[Any], engine: Engine, database_url: str, manifest_path: Path
) -> Iterator[Any]:
    """``events`` (dagster-dbt's), each mart's materialization with :func:`mart_metadata`."""
    marts = _mart_tables(str(manifest_path), manifest_path.stat().st_mtime)
    for event in events:
        if isinstance(event, dg.Output | dg.AssetMaterialization):
            unique_id = getattr(event.metadata.get("unique_id"), "value", None)
            table = marts.get(unique_id)
            if table is not None:
                extra = mart_metadata(engine, database_url, table)
                event = event.with_metadata({**event.metadata, **extra})
        yield event
