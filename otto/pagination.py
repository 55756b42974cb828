from rest_framework import pagination


class CursorPagination(pagination.CursorPagination):
    """``{"results", "next", "previous"}`` with ``?cursor=``; ``page_size`` up to 200.

    Cursors stay stable while new calls arrive, and cost the same on page 1 and page
    1,000, unlike offsets.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-created_at"


class AuditCursorPagination(CursorPagination):
    # Newest first; the id orders events written in the same microsecond.
    # DRF takes a tuple here; the stubs type ordering as a single str.
    ordering = ("-created_at", "-id")  # type: ignore[assignment]
