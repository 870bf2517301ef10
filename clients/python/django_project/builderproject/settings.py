"""A tiny no-code builder project: one app, `builder`, on PostgreSQL with lockhier.

The server comes from PGHOST/PGPORT/PGUSER (as for psql); the database from LOCKHIER_DJANGO_DB.
"""
import os

SECRET_KEY = "not-a-secret: test project"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["builder"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def database(application_name, **options):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("LOCKHIER_DJANGO_DB", "lockhier_clients_py"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        "OPTIONS": {"application_name": application_name, **options},
    }


DATABASES = {
    "default": database(os.environ.get("LOCKHIER_DJANGO_APPLICATION_NAME", "field editor")),
    # A background job's own connection (a snapshot of an application, an import...).
    "jobs": database("snapshot #7"),
    # Workers on a pool of one connection (Django >= 5.1 pools with psycopg_pool).
    "pooled": database("backup worker", pool={"min_size": 1, "max_size": 1, "timeout": 5}),
}
