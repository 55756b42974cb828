"""CallAnalysis's effective booking status, qualified and objections (analysis.effective)
as stored generated columns: the planner has statistics for what the calls list filters
and the KPIs count.

Cost: PostgreSQL rewrites the table to add a stored generated column, under an ACCESS
EXCLUSIVE lock on ``analysis_callanalysis`` (its reads and writes wait) for the whole
rewrite. The three columns go in one ``ALTER TABLE``, so the table is rewritten once, not
three times: 19–30 s for the 797,677 analyses of the 1,000,000-call benchmark, and the table
grew from 672 to 841 MB (docs/deploy.md, "Migration note"). SQLite rebuilds
the table, as for any column it cannot add in place.
"""

import django.db.models.fields.json
import django.db.models.functions.comparison
from django.db import migrations, models

NAMES = ("effective_booking_status", "effective_objections", "effective_qualified")


def add_columns(apps, schema_editor):
    """The columns in one statement on PostgreSQL: one table rewrite."""
    model = apps.get_model("analysis", "CallAnalysis")
    fields = [model._meta.get_field(name) for name in NAMES]
    if schema_editor.connection.vendor != "postgresql":
        for field in fields:
            schema_editor.add_field(model, field)
        return
    clauses, params = [], []
    for field in fields:
        definition, field_params = schema_editor.column_sql(model, field)
        clauses.append(f"ADD COLUMN {schema_editor.quote_name(field.column)} {definition}")
        params.extend(field_params)
    table = schema_editor.quote_name(model._meta.db_table)
    schema_editor.execute(f"ALTER TABLE {table} {', '.join(clauses)}", params)


def drop_columns(apps, schema_editor):
    model = apps.get_model("analysis", "CallAnalysis")
    for name in NAMES:
        schema_editor.remove_field(model, model._meta.get_field(name))


class Migration(migrations.Migration):
    dependencies = [
        ("analysis", "0006_kpi_rollup"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="callanalysis",
                    name="effective_booking_status",
                    field=models.GeneratedField(
                        db_persist=True,
                        expression=django.db.models.functions.comparison.Coalesce(
                            django.db.models.fields.json.KeyTextTransform(
                                "booking_status", "overrides"
                            ),
                            models.F("booking_status"),
                            output_field=models.CharField(),
                        ),
                        output_field=models.CharField(
                            choices=[
                                ("booked", "Booked"),
                                ("not_booked", "Not booked"),
                                ("service_not_offered", "Service not offered"),
                            ],
                            max_length=24,
                        ),
                    ),
                ),
                migrations.AddField(
                    model_name="callanalysis",
                    name="effective_objections",
                    field=models.GeneratedField(
                        db_persist=True,
                        expression=django.db.models.functions.comparison.Coalesce(
                            django.db.models.fields.json.KeyTransform("objections", "overrides"),
                            models.F("objections"),
                            output_field=models.JSONField(),
                        ),
                        output_field=models.JSONField(),
                    ),
                ),
                migrations.AddField(
                    model_name="callanalysis",
                    name="effective_qualified",
                    field=models.GeneratedField(
                        db_persist=True,
                        expression=django.db.models.functions.comparison.Coalesce(
                            django.db.models.functions.comparison.Cast(
                                django.db.models.fields.json.KeyTextTransform(
                                    "qualified", "overrides"
                                ),
                                models.BooleanField(),
                            ),
                            models.F("qualified"),
                            output_field=models.BooleanField(),
                        ),
                        output_field=models.BooleanField(null=True),
                    ),
                ),
            ],
        ),
        migrations.RunPython(add_columns, drop_columns),
    ]
