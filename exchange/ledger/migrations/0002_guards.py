"""Append-only, balance and gapless-log guards (SQLite triggers; PostgreSQL functions, triggers and deferred
constraint triggers), and the single log-state row. The SQL lives in exchange.ledger.schema (frozen V1 lists)."""

import hashlib

from django.db import migrations

from exchange.ledger import schema


def install(apps, schema_editor):
    schema.install_guards(schema_editor.connection)
    LogState = apps.get_model("ledger", "LogState")
    LogState.objects.using(schema_editor.connection.alias).get_or_create(
        id=1, defaults={"size": 0, "compact_range": b"", "root": hashlib.sha256(b"").digest()}
    )


def uninstall(apps, schema_editor):
    schema.drop_guards(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall)]
