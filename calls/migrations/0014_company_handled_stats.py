"""Extended statistics on calls (company, handled_by), PostgreSQL only.

A CSR handles one tenant's calls, so ``handled_by`` implies ``company``; without these the
planner multiplies the two selectivities and expects 2 of a median tenant's CSR's 1,187
calls, reads and sorts all of them for ``calls/?handled_by=&booked=`` (7.3 ms) instead of
walking ``calls_company_handled_idx`` in order to the page (0.9 ms; docs/performance.md).
Django declares no statistics objects in ``Meta``, hence this migration.

Cost: a catalog entry only; the next ``ANALYZE`` (autovacuum's, or the benchmark's) fills
it. No lock beyond a moment's ``SHARE UPDATE EXCLUSIVE``, no rewrite.
"""

from django.db import migrations

NAME = "calls_call_company_handled_stats"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {NAME} (dependencies) "
            "ON company_id, handled_by_id FROM calls_call"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {NAME}")


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0013_recording_access_plural"),
    ]

    operations = [migrations.RunPython(create, drop)]
