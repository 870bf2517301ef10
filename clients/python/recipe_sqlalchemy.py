"""Recipe: a field update with SQLAlchemy 2 that fails fast when another operation is in the way."""
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError


class FieldBusy(Exception):
    """Another operation (a snapshot, an import...) holds the field: args are (message, detail)."""


def update_field(engine: Engine, app_id: int, table_id: int, field_id: int, name: str) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT lockhier.lock_field(:app, :table, :field, 'field__update')"),
                         {"app": app_id, "table": table_id, "field": field_id})
            conn.execute(text("UPDATE database_field SET name = :name WHERE id = :field"), {"name": name, "field": field_id})
    except OperationalError as e:
        if e.orig.sqlstate != "55P03":  # lock_not_available: "operation in progress: ..."
            raise
        raise FieldBusy(e.orig.diag.message_primary, e.orig.diag.message_detail) from e
