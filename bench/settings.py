"""Otto's settings plus the benchmark's reference views (bench/urls.py) and its per-task
CPU meter (bench/apps.py). Never deployed."""

from otto.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
INSTALLED_APPS = [*INSTALLED_APPS, "bench.apps.BenchConfig"]  # noqa: F405
