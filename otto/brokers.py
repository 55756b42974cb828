"""django-q2 brokers that also say which cluster is alive.

django-q2 saves each cluster's stats under a random cluster id, without its name, so
from the outside one cannot tell whether the cluster serving ``asr`` is up. These
brokers piggyback on the stat save the guard loop already makes every half second and
leave a short-lived presence key, per cluster name, in the shared cache.
"""

import os
import socket
import time

import redis
from django.core.cache import cache
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.conf import Conf

PRESENCE_TTL = 10  # seconds; the guard loop refreshes it every GUARD_CYCLE (0.5 s)


def presence_key(cluster: str) -> str:
    return f"otto:cluster:{cluster}"


class ClusterPresenceMixin:
    _since: float | None = None

    def set_stat(self, key: str, value: str, timeout: int) -> None:
        super().set_stat(key, value, timeout)  # type: ignore[misc]
        if self._since is None:
            self._since = time.time()
        cache.set(
            presence_key(Conf.CLUSTER_NAME),
            {
                "since": self._since,
                "seen": time.time(),
                "host": socket.gethostname(),
                "pid": os.getpid(),
            },
            PRESENCE_TTL,
        )


# The ignores: django-q2 ships no type information, so its broker classes are Any to mypy.
class RedisBroker(ClusterPresenceMixin, Redis):  # type: ignore[misc]
    @staticmethod
    def get_connection(list_key: str | None = None) -> redis.Redis:
        # django-q2 connects without timeouts, so an unreachable Redis would hang a web
        # request forever. The read timeout stays above BLPOP's 1 s wait.
        return redis.Redis.from_url(
            Conf.REDIS, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
        )


class OrmBroker(ClusterPresenceMixin, ORM):  # type: ignore[misc]
    pass
