"""The KPIs' schedule (docs/operations.md): the daily rollup catches up every minute, so a
dashboard read rarely has a day to recompute first (analysis.rollup)."""

from analysis.tasks import catch_up_kpi_rollup
from otto.queues import Queue
from otto.schedules import Job, register

register(Job("kpi-rollup", catch_up_kpi_rollup, Queue.DEFAULT, minutes=1))
