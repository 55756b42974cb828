"""Otto's settings plus the benchmark's reference views (bench/urls.py). Never deployed."""

from otto.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
