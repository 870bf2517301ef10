"""Recipe: a chunked import through PgBouncer in transaction pooling (SQLAlchemy 2), under a lease.

Each chunk is a transaction of its own, on whatever server connection PgBouncer gives it. The
lease belongs to the import's name, not to a connection: from the first chunk to the last it
keeps field deletions and type changes of the table out, whoever asks, on any connection.
"""
from collections.abc import Iterable

from sqlalchemy import Engine, create_engine, text


def pgbouncer_engine(url: str) -> Engine:
    # No server-side prepared statements (psycopg prepares a query run 5 times): the next
    # transaction may land on a server connection without them, or with another client's of
    # the same name ("prepared statement "_pg3_0" already exists").
    return create_engine(url, connect_args={"prepare_threshold": None})


class LeaseLost(Exception):
    """The import's lease expired or was released: this chunk was not written, nor any after it."""


def import_chunks(engine: Engine, app_id: int, table_id: int, owner: str, chunks: Iterable[list[str]]) -> int:
    """Imports the values of each chunk into imported_row; returns how many it imported."""
    with engine.begin() as conn:
        token = conn.execute(text("SELECT lockhier.lease_table(:app, :table, :owner,"
                                  " ARRAY['field__deletion', 'field__type_update'], 'share', ttl => '2 min')"),
                             {"app": app_id, "table": table_id, "owner": owner}).scalar_one()
    imported = 0
    try:
        for values in chunks:
            with engine.begin() as conn:  # one transaction a chunk
                # True: held until this transaction ends. False: stop before writing anything.
                if not conn.execute(text("SELECT lockhier.lease_valid(:token)"), {"token": token}).scalar_one():
                    raise LeaseLost(f"lease {token} of {owner!r} lost after {imported} rows")
                conn.execute(text("INSERT INTO imported_row (table_id, value) VALUES (:table, :value)"),
                             [{"table": table_id, "value": value} for value in values])
                # 2 more minutes from now: each chunk must take less than that.
                conn.execute(text("SELECT lockhier.renew_lease(:token)"), {"token": token})
            imported += len(values)
    finally:
        with engine.begin() as conn:  # on any server connection
            conn.execute(text("SELECT lockhier.release_lease(:token)"), {"token": token})
    return imported
