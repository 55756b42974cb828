import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
import redis
from django.conf import settings

from integrations.sandbox.config import sandbox_settings
from integrations.sandbox.server import Sandbox
from otto.queues import reset_brokers

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets Redis databases of its own, two below the previous
    worker's (gw0 the configured 14/15, gw1 12/13, …), as pytest-django gives it its own
    PostgreSQL database: one worker's cleanup must not drop another's queued tasks."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not settings.REDIS_URL:
        return
    from django_q.conf import Conf

    url = urlsplit(settings.REDIS_URL)
    db = int(url.path.lstrip("/") or 0) - 2 * int(worker.removeprefix("gw"))
    if db < 0:
        raise pytest.UsageError(f"REDIS_URL's database index leaves none for worker {worker}")
    broker = urlunsplit(url._replace(path=f"/{db}"))
    settings.REDIS_URL = Conf.REDIS = settings.Q_CLUSTER["redis"] = broker
    settings.CACHES["default"]["LOCATION"] = urlunsplit(url._replace(path=f"/{db + 1}"))
    os.environ["REDIS_URL"] = broker


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


@pytest.fixture
def broker_redis() -> redis.Redis:
    """The Redis database the task broker writes to."""
    return _redis(settings.REDIS_URL)


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings):
    """Admin pages render from the apps' static files: the test run has no manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _forget_callrail_tenants():
    """A rolled-back test leaves no row behind but fires no signal either: the webhook's
    per-process tenant memory must not carry a company into the next test."""
    from calls.webhooks.callrail import forget_tenants

    forget_tenants()


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
    from integrations.openai.keys import reset_keyrings

    _sandbox_server.reset()
    _sandbox_server.outbound = None
    reset_keyrings()  # key health is per process; a test's revoked key must not leak
    for name, value in sandbox_settings(_sandbox_server.url).items():
        setattr(settings, name, value)
    settings.SANDBOX = True
    settings.SANDBOX_URL = _sandbox_server.url
    settings.PROVIDER_TIMEOUTS = dict.fromkeys(settings.PROVIDER_TIMEOUTS, 2.0)
    yield _sandbox_server
    _sandbox_server.reset()
    reset_keyrings()


# --- the cast: two tenants, their people, and tokens from the sandbox's Clerk issuer ------

CLERK_ROLE_FOR = {"manager": "admin", "csr": "csr", "sales_rep": "rep"}


class ClerkIssuer:
    """Mints session tokens with the sandbox's Clerk-style issuer (real RS256, real JWKS)."""

    def __init__(self, server: Sandbox) -> None:
        self.server = server

    def token(
        self,
        *,
        sub: str = "user_test",
        org_id: str | None = None,
        org_role: str | None = None,
        version: str = "v2",
        lifetime: int = 300,
        **extra,
    ) -> str:
        import httpx

        spec = {
            "sub": sub,
            "org_id": org_id,
            "org_role": org_role,
            "version": version,
            "lifetime": lifetime,
            **extra,
        }
        response = httpx.post(f"{self.server.url}/clerk/tokens", json=spec, timeout=5)
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def rotate(self) -> str:
        import httpx

        return httpx.post(f"{self.server.url}/_sandbox/clerk/rotate", timeout=5).json()["kid"]

    def jwks(self) -> dict:
        import httpx

        return httpx.get(f"{self.server.url}/clerk/.well-known/jwks.json", timeout=5).json()

    @staticmethod
    def client(token: str):
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client


@pytest.fixture
def clerk(sandbox) -> ClerkIssuer:
    """The sandbox's Clerk issuer, with the app's JWKS cache cold at the start."""
    from integrations.clerk.client import reset_clients

    reset_clients()
    yield ClerkIssuer(sandbox)
    reset_clients()


class Member:
    """One of the cast: a membership plus ways to call the API as that person."""

    def __init__(self, membership, issuer: ClerkIssuer) -> None:
        self.membership = membership
        self.issuer = issuer

    user = property(lambda self: self.membership.user)
    company = property(lambda self: self.membership.company)
    role = property(lambda self: self.membership.role)

    def token(self, **extra) -> str:
        return self.issuer.token(
            sub=self.user.clerk_user_id,
            org_id=self.company.clerk_org_id,
            org_role=CLERK_ROLE_FOR[self.role],
            **extra,
        )

    def client(self, **extra):
        return self.issuer.client(self.token(**extra))


def make_company(name: str, slug: str):
    from otto.models import Company

    return Company.objects.create(name=name, slug=slug, clerk_org_id=f"org_{slug}")


def make_member(company, role: str, issuer: ClerkIssuer) -> Member:
    from otto.models import Membership, User

    clerk_user_id = f"user_{company.slug}_{role}"
    user = User.objects.create(
        username=clerk_user_id,
        clerk_user_id=clerk_user_id,
        email=f"{role}@{company.slug}.example.com",
        name=f"{company.name} {role}",
    )
    return Member(Membership.objects.create(user=user, company=company, role=role), issuer)


@pytest.fixture
def acme(db):
    return make_company("Acme Heating", "acme")


@pytest.fixture
def globex(db):
    return make_company("Globex Plumbing", "globex")


@pytest.fixture
def acme_manager(acme, clerk) -> Member:
    return make_member(acme, "manager", clerk)


@pytest.fixture
def acme_csr(acme, clerk) -> Member:
    return make_member(acme, "csr", clerk)


@pytest.fixture
def acme_rep(acme, clerk) -> Member:
    return make_member(acme, "sales_rep", clerk)


@pytest.fixture
def globex_manager(globex, clerk) -> Member:
    """The outsider: a manager of another tenant."""
    return make_member(globex, "manager", clerk)


@pytest.fixture
def kpi_from_rollup(monkeypatch):
    """``kpi_from_rollup(member, kpi, **params)``: metrics/<kpi>/ as the KPIs' daily rollup
    answers it, asserted to have come from the rollup (built, the range's marked days
    recomputed) and to equal what the raw tables give (``range_days``, under ``fresh_days``
    and ``reps``, answering None, as for a tenant whose rollup is not built)."""
    from analysis import rollup
    from analysis.models import KpiDirtyDay

    def get(member: Member, kpi: str, params: dict) -> dict:
        response = member.client().get(f"/api/v1/metrics/{kpi}/", params)
        assert response.status_code == 200, response.content
        return response.json()

    def check(member: Member, kpi: str, **params: str) -> dict:
        company = member.company
        assert rollup.is_built(company)
        from_rollup = get(member, kpi, params)
        # The range's marked days were recomputed (the others wait for a read or the schedule).
        marks = KpiDirtyDay.objects.filter(tenant=company.pk)
        assert not marks.filter(day__range=(params["date_from"], params["date_to"])).exists()
        with monkeypatch.context() as raw:
            raw.setattr(rollup, "range_days", lambda company, date_from, date_to: None)
            assert get(member, kpi, params) == from_rollup, kpi
        return from_rollup

    return check


@pytest.fixture(scope="session")
def moto_s3_url():
    """moto's S3 as a real HTTP server on a free port, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(settings, moto_s3_url):
    """``STORAGES["default"]`` on S3 (django-storages) against moto's server, with a fresh
    bucket; the options mirror otto/settings.py's S3 block.

    Assigning ``settings.STORAGES`` fires ``setting_changed``, whose Django receiver drops
    the cached storages and re-arms the ``default_storage`` LazyObject, so the FileField's
    storage (that same LazyObject) follows.
    """
    bucket = f"otto-test-{uuid.uuid4().hex[:12]}"
    credentials = {
        "endpoint_url": moto_s3_url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    client = boto3.client("s3", **credentials)
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "region_name": "us-east-1",
                "endpoint_url": moto_s3_url,
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": None,
                "file_overwrite": False,
                "querystring_expire": settings.RECORDING_URL_TTL_SECONDS,
                "signature_version": "s3v4",
            },
        },
    }
    client.bucket = bucket
    return client
