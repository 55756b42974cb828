"""The KPIs run with PostgreSQL's JIT off: compiling a large tenant's 90-day aggregate cost
several times its execution (docs/performance.md)."""

import pytest
from django.db import connection

from analysis import kpis

pytestmark = pytest.mark.django_db


def jit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        return str(cursor.fetchone()[0])


def test_the_kpi_queries_run_without_jit():
    with kpis.without_jit():
        assert jit() == "off"


@pytest.mark.django_db(transaction=True)
def test_the_setting_ends_with_the_kpis_transaction():
    before = jit()
    with kpis.without_jit():
        pass
    assert jit() == before
