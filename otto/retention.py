"""Retention: each tenant's windows after which recordings, transcripts, webhook bodies and
message bodies are purged (docs/retention.md).

The core knows no domain, so each app registers what it purges in its ``AppConfig.ready()``
(:func:`register`), under one of the :data:`WINDOWS`. :func:`purge_company` runs every
purger whose window the tenant set, in batches of :data:`BATCH_SIZE` rows, each batch its
own transaction, and records a :class:`~otto.models.RetentionRun`. A purger selects only
rows past the window and not purged yet, and purges with a compare-and-set, so a re-run is
a no-op and two clusters running it at once purge each row once.

Files: a purger that lets go of a stored file records it with :meth:`Purge.release_files`
in the same transaction that stops its row pointing at it; the file is deleted from storage
once that commits, and its :class:`~otto.models.PendingFileDeletion` row stays until storage
confirms. So no row ever points at a deleted file, and no file is left with nothing that
tracks it: a failed delete is recorded on the run and retried by the next one.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Model, Q, QuerySet
from django.utils import timezone

from otto.models import Company, PendingFileDeletion, RetentionRun

logger = logging.getLogger(__name__)

# Window → the Company field that holds it in days (blank: kept forever).
WINDOWS = {
    "recordings": "retention_recordings_days",
    "transcripts": "retention_transcripts_days",
    "webhook_bodies": "retention_webhook_bodies_days",
    "messages": "retention_messages_days",
}
# Rows per statement: a purge never holds one huge transaction.
BATCH_SIZE = 500
# Count keys of the files deleted from storage, and of those whose delete failed.
FILES_DELETED = "files_deleted"
FILES_FAILED = "files_failed"
ERROR_MAX_CHARS = 500


@dataclass(frozen=True)
class Purger:
    name: str  # its count in RetentionRun.counts, e.g. "recordings"
    window: str  # a key of WINDOWS
    # purge(purge): purges what is older than purge.cutoff; the number of rows purged (or,
    # on a dry run, that would be).
    purge: Callable[[Purge], int]
    # files_in_use(names): those of the released ``names`` that a row points at again (a
    # recording fetched anew to the same path); they are kept, not deleted.
    files_in_use: Callable[[list[str]], set[str]] | None = None


_purgers: dict[str, Purger] = {}


def register(
    name: str,
    window: str,
    purge: Callable[[Purge], int],
    *,
    files_in_use: Callable[[list[str]], set[str]] | None = None,
) -> None:
    if window not in WINDOWS:
        raise ValueError(f"unknown retention window {window!r}; known: {', '.join(WINDOWS)}")
    _purgers[name] = Purger(name, window, purge, files_in_use)


def purgers() -> list[Purger]:
    return sorted(_purgers.values(), key=lambda purger: purger.name)


@dataclass
class Purge:
    """One tenant's run: what a purger is given (the tenant, the cutoff, dry run or not)."""

    company: Company
    now: datetime.datetime
    dry_run: bool = False
    batch_size: int = BATCH_SIZE
    cutoff: datetime.datetime = field(default_factory=timezone.now)
    kind: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    # Pending deletions already tried in this run: a failing file is tried once per run.
    _tried: set[int] = field(default_factory=set)

    def older_than(self, at: str, fallback: str | None = None) -> Q:
        """Rows whose ``at`` is before the cutoff (or, when ``at`` is null, ``fallback``)."""
        past = Q(**{f"{at}__lt": self.cutoff})
        if fallback is None:
            return past
        return past | Q(**{f"{at}__isnull": True, f"{fallback}__lt": self.cutoff})

    def in_batches[M: Model](
        self, rows: QuerySet[M], apply: Callable[[QuerySet[M], list[Any]], int]
    ) -> int:
        """Purge ``rows`` a batch at a time; the number purged (a dry run counts them).

        Each batch is its own transaction, after which released files are deleted.
        ``apply(rows, pks)`` purges the batch and returns how many it changed; it must
        filter ``rows`` by ``pks`` again, so a row another run purged meanwhile is skipped.
        The batches walk up the primary key, so a row that cannot be purged now (locked,
        say) never stops the walk; the next run picks it up.
        """
        if self.dry_run:
            return rows.count()
        total = 0
        last: Any = None
        while True:
            with transaction.atomic():
                batch = rows.order_by("pk")
                if last is not None:
                    batch = batch.filter(pk__gt=last)
                pks = list(batch.values_list("pk", flat=True)[: self.batch_size])
                if not pks:
                    return total
                total += apply(rows, pks)
            last = pks[-1]
            self.delete_files()

    def blank[M: Model](self, rows: QuerySet[M], **changes: Any) -> int:
        """:meth:`in_batches` for the common case: one ``UPDATE`` of ``changes`` per batch."""
        return self.in_batches(rows, lambda rows, pks: rows.filter(pk__in=pks).update(**changes))

    def release_files(self, names: Iterable[str]) -> None:
        """Inside the transaction that stops rows pointing at ``names``: delete these files
        from storage once it commits (:meth:`delete_files`), tracked until storage confirms."""
        PendingFileDeletion.objects.bulk_create(
            [
                PendingFileDeletion(company=self.company, kind=self.kind, name=name)
                for name in names
                if name
            ],
            ignore_conflicts=True,
        )

    def delete_files(self) -> None:
        """Delete this tenant's released files from storage, each at most once per run."""
        if self.dry_run:
            return
        while True:
            pending = list(
                PendingFileDeletion.objects.filter(company=self.company)
                .exclude(pk__in=self._tried)
                .order_by("pk")[: self.batch_size]
            )
            if not pending:
                return
            in_use = _files_in_use(pending)
            for row in pending:
                self._tried.add(row.pk)
                if row.name in in_use:
                    # A row points at it again: it is that row's file now, not ours to delete.
                    PendingFileDeletion.objects.filter(pk=row.pk).delete()
                    continue
                self._delete_file(row)

    def _delete_file(self, row: PendingFileDeletion) -> None:
        try:
            # Deleting a missing file succeeds (S3, the filesystem): a run that died after
            # the delete, or a second cluster, just deletes it again.
            default_storage.delete(row.name)
        except Exception as exc:
            logger.warning("retention: could not delete %s from storage", row.name, exc_info=True)
            error = f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]
            PendingFileDeletion.objects.filter(pk=row.pk).update(
                attempts=F("attempts") + 1, last_error=error
            )
            self._add(FILES_FAILED)
            self.errors.append(f"{row.kind}: could not delete {row.name} from storage: {error}")
            return
        # Counted by the run whose delete removed the row: two runs at once count it once.
        deleted, _ = PendingFileDeletion.objects.filter(pk=row.pk).delete()
        if deleted:
            self._add(FILES_DELETED)

    def _add(self, key: str, count: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + count


def _files_in_use(pending: list[PendingFileDeletion]) -> set[str]:
    in_use: set[str] = set()
    for kind in {row.kind for row in pending}:
        purger = _purgers.get(kind)
        if purger is not None and purger.files_in_use is not None:
            in_use |= purger.files_in_use([row.name for row in pending if row.kind == kind])
    return in_use


def purge_company(
    company: Company,
    *,
    now: datetime.datetime | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> Purge:
    """Purge what is past the tenant's windows, and record it (unless ``dry_run``, which
    writes nothing and deletes nothing: its counts are what a run would purge now).

    A purger that raises is recorded on the run and the others still run.
    """
    now = now or timezone.now()
    purge = Purge(company=company, now=now, dry_run=dry_run, batch_size=batch_size)
    run = None if dry_run else RetentionRun.objects.create(company=company, started_at=now)
    # Files an earlier run released but could not delete.
    purge.delete_files()
    for purger in purgers():
        days = getattr(company, WINDOWS[purger.window])
        if days is None:
            continue
        purge.kind = purger.name
        purge.cutoff = now - datetime.timedelta(days=days)
        try:
            purge.counts[purger.name] = purger.purge(purge)
        except Exception as exc:
            logger.exception("retention: %s failed for company %s", purger.name, company.pk)
            purge.errors.append(f"{purger.name}: {type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS])
    if run is not None:
        RetentionRun.objects.filter(pk=run.pk).update(
            finished_at=timezone.now(), counts=purge.counts, errors=purge.errors
        )
    return purge


def companies_with_work() -> QuerySet[Company]:
    """Active tenants with a window set or files still to delete (the daily schedule)."""
    windows = Q()
    for name in WINDOWS.values():
        windows |= Q(**{f"{name}__isnull": False})
    pending = PendingFileDeletion.objects.values("company")
    return Company.objects.filter(is_active=True).filter(windows | Q(pk__in=pending))
