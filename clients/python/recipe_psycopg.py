"""Recipe: a field update with psycopg 3 that fails fast when another operation is in the way."""
import psycopg
from psycopg import errors


class FieldBusy(Exception):
    """Another operation (a snapshot, an import...) holds the field: args are (message, detail)."""


def update_field(conn: psycopg.Connection, app_id: int, table_id: int, field_id: int, name: str) -> None:
    try:
        with conn.transaction():
            conn.execute("SELECT lockhier.lock_field(%s, %s, %s, 'field__update')", (app_id, table_id, field_id))
            conn.execute("UPDATE database_field SET name = %s WHERE id = %s", (name, field_id))
    except errors.LockNotAvailable as e:  # SQLSTATE 55P03, "operation in progress: ..."
        raise FieldBusy(e.diag.message_primary, e.diag.message_detail) from e
