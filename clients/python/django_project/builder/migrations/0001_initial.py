from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="DatabaseField",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("table_id", models.BigIntegerField()),
                ("name", models.TextField()),
            ],
            options={"db_table": "database_field"},
        ),
    ]
