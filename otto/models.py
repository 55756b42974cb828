from django.contrib.auth.models import AbstractUser
from django.db import models

from otto.queues import Queue


class User(AbstractUser):
    """A person who signs in: Clerk users through the API, staff through the admin."""

    name = models.CharField(max_length=200, blank=True)


class Company(models.Model):
    """A tenant: one home-services business and everything it owns."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    timezone = models.CharField(max_length=64, default="America/New_York")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class QueueHeartbeat(models.Model):
    """When a worker last ran the heartbeat task of a queue, and where."""

    queue = models.CharField(max_length=32, primary_key=True, choices=[(q, q) for q in Queue])
    cluster = models.CharField(max_length=40)
    beat_at = models.DateTimeField()
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()

    class Meta:
        ordering = ["queue"]

    def __str__(self) -> str:
        return f"{self.queue} @ {self.beat_at:%Y-%m-%d %H:%M:%S}"
