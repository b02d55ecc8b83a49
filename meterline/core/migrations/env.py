"""Alembic environment: plain SQL migrations, no ORM metadata (the schema is the contract)."""

from alembic import context
from sqlalchemy import create_engine, pool, text

config = context.config
url = config.get_main_option("sqlalchemy.url")
engine = create_engine(url, poolclass=pool.NullPool)

with engine.connect() as connection:
    # Serialise concurrent migrators (two CLI commands starting at once) on one advisory lock.
    connection.execute(text("select pg_advisory_lock(7331)"))
    connection.commit()
    context.configure(connection=connection, version_table_schema="meterline")
    connection.execute(text("create schema if not exists meterline"))
    connection.commit()
    with context.begin_transaction():
        context.run_migrations()
    connection.execute(text("select pg_advisory_unlock(7331)"))
    connection.commit()
engine.dispose()
