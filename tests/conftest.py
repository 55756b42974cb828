import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from integrations.sandbox.config import sandbox_settings
from integrations.sandbox.server import Sandbox
from otto.queues import reset_brokers

ROOT = Path(__file__).resolve().parent.parent


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


@pytest.fixture
def broker_redis() -> redis.Redis:
    """The Redis database the task broker writes to."""
    return _redis(settings.REDIS_URL)


@pytest.fixture(autouse=True)
def _clean_redis():
    """Each test starts with no queued tasks, cluster stats or cached values.

    Only Otto's own keys are removed, so pointing REDIS_URL at a shared Redis is safe.
    """
    reset_brokers()
    broker = _redis(settings.REDIS_URL)
    cache_db = _redis(settings.CACHES["default"]["LOCATION"])
    for client, pattern in ((broker, "django_q:*"), (cache_db, "*otto*")):
        keys = list(client.scan_iter(pattern))
        if keys:
            client.delete(*keys)
    yield
    reset_brokers()


def subprocess_database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    return (
        f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    )


def manage_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": subprocess_database_url(), "REDIS_URL": settings.REDIS_URL}
    env.update(extra)
    return env


class QCluster:
    """A real ``manage.py qcluster`` subprocess against the test database and Redis."""

    def __init__(self, name: str = "default", **env: str) -> None:
        self.name = name
        extra = {"Q_CLUSTER_NAME": name, "LOG_LEVEL": "WARNING", **env}
        self.log = open(ROOT / "var" / f"qcluster-{name}-{os.getpid()}.log", "w+b")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=manage_env(**extra),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_alive(self, timeout: float = 30) -> None:
        from django.core.cache import cache

        from otto.brokers import presence_key

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"qcluster exited early:\n{self.output()}")
            if cache.get(presence_key(self.name)):
                return
            time.sleep(0.2)
        raise TimeoutError(f"qcluster {self.name} not alive after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        # SIGTERM to qcluster itself lets it stop its sentinel and workers in order;
        # whatever is left of the process group after that is killed.
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()


@pytest.fixture
def start_qcluster(transactional_db):
    clusters: list[QCluster] = []

    def start(name: str = "default", **env: str) -> QCluster:
        (ROOT / "var").mkdir(exist_ok=True)
        cluster = QCluster(name, **env)
        clusters.append(cluster)
        cluster.wait_alive()
        return cluster

    yield start
    for cluster in clusters:
        cluster.stop()


def wait_for(predicate, timeout: float = 30, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s")


@pytest.fixture(scope="session")
def _sandbox_server():
    server = Sandbox(app_url="http://testserver").start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(_sandbox_server, settings):
    """The provider sandbox (one per test session, reset per test) with every base URL
    and credential pointed at it, and provider timeouts short enough to test."""
    _sandbox_server.reset()
    _sandbox_server.outbound = None
    for name, value in sandbox_settings(_sandbox_server.url).items():
        setattr(settings, name, value)
    settings.SANDBOX = True
    settings.SANDBOX_URL = _sandbox_server.url
    settings.PROVIDER_TIMEOUTS = dict.fromkeys(settings.PROVIDER_TIMEOUTS, 2.0)
    yield _sandbox_server
    _sandbox_server.reset()
