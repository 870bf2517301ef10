"""Recipe: a field update in Django that fails fast when another operation is in the way."""
from django.db import OperationalError, connection, transaction


class FieldBusy(Exception):
    """Another operation (a snapshot, an import...) holds the field: args are (message, detail)."""


def update_field(app_id, table_id, field_id, name):
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT lockhier.lock_field(%s, %s, %s, 'field__update')", [app_id, table_id, field_id])
            cursor.execute("UPDATE database_field SET name = %s WHERE id = %s", [name, field_id])
    except OperationalError as e:
        if getattr(e.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        raise FieldBusy(e.__cause__.diag.message_primary, e.__cause__.diag.message_detail) from e
