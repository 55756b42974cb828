"""CallRail company ids move from ``Company.callrail_company_ids`` (a JSON list) into
``CallRailCompany`` rows, unique across tenants.

An id claimed by several tenants stays with the oldest of them (``created_at``, then
``pk``); the later claims are dropped and logged, since they are the ones a manager could
have copied from another tenant. Values are kept as strings, numeric legacy ids included.
"""

import logging

import django.db.models.deletion
from django.db import migrations, models

logger = logging.getLogger("otto.migrations")


def _claimed(value) -> list[str]:
    ids = []
    for item in value if isinstance(value, list) else []:
        text = str(item).strip() if item is not None else ""
        if text and text not in ids:
            ids.append(text)
    return ids


def copy_ids_to_rows(apps, schema_editor):
    Company = apps.get_model("otto", "Company")
    CallRailCompany = apps.get_model("otto", "CallRailCompany")
    owner: dict[str, int] = {}
    rows = []
    for company in Company.objects.order_by("created_at", "pk").only("pk", "callrail_company_ids"):
        for callrail_id in _claimed(company.callrail_company_ids):
            if callrail_id in owner:
                logger.warning(
                    "CallRail company %s is claimed by companies %s and %s: kept by %s, "
                    "dropped from %s",
                    callrail_id,
                    owner[callrail_id],
                    company.pk,
                    owner[callrail_id],
                    company.pk,
                )
                continue
            owner[callrail_id] = company.pk
            rows.append(CallRailCompany(company_id=company.pk, callrail_company_id=callrail_id))
    CallRailCompany.objects.bulk_create(rows, batch_size=500)


def copy_rows_to_ids(apps, schema_editor):
    Company = apps.get_model("otto", "Company")
    CallRailCompany = apps.get_model("otto", "CallRailCompany")
    claimed: dict[int, list[str]] = {}
    for row in CallRailCompany.objects.order_by("pk"):
        claimed.setdefault(row.company_id, []).append(row.callrail_company_id)
    for company_id, ids in claimed.items():
        Company.objects.filter(pk=company_id).update(callrail_company_ids=ids)


class Migration(migrations.Migration):
    dependencies = [
        ("otto", "0002_company_transcriber_default"),
    ]

    operations = [
        migrations.CreateModel(
            name="CallRailCompany",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("callrail_company_id", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "company",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="callrail_companies",
                        to="otto.company",
                    ),
                ),
            ],
            options={
                "verbose_name": "CallRail company",
                "verbose_name_plural": "CallRail companies",
                "ordering": ["callrail_company_id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("callrail_company_id",), name="otto_callrail_company_id_uniq"
                    )
                ],
            },
        ),
        migrations.RunPython(copy_ids_to_rows, copy_rows_to_ids),
        migrations.RemoveField(model_name="company", name="callrail_company_ids"),
    ]
