from django.db import migrations, models


class Migration(migrations.Migration):
    """Adds a column: must not run beside live field edits of application 7."""

    dependencies = [("builder", "0001_initial")]
    operations = [
        # Waits up to 30 s for the field edits, imports and snapshots of application 7 in
        # progress, then keeps new ones out until this migration's transaction commits.
        migrations.RunSQL("SELECT lockhier.lock_application(7, wait => '30 s')", migrations.RunSQL.noop),
        migrations.AddField("databasefield", "description", models.TextField(default="")),
    ]
