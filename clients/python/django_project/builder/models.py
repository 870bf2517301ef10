from django.db import models


class DatabaseField(models.Model):
    """A field of a table of an application of the no-code builder."""

    table_id = models.BigIntegerField()
    name = models.TextField()
    description = models.TextField(default="")

    class Meta:
        db_table = "database_field"
