"""Server-side paging shared by list pages: page and page size live in the URL."""

from __future__ import annotations

from django.core.paginator import Page, Paginator

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50


def page_size(request) -> int:
    try:
        size = int(request.GET.get("per", DEFAULT_PAGE_SIZE))
    except (TypeError, ValueError):
        return DEFAULT_PAGE_SIZE
    return size if size in PAGE_SIZES else DEFAULT_PAGE_SIZE


def paginate(request, queryset, *, count: int | None = None) -> Page:
    """The requested page (out-of-range numbers clamp to the last page).

    `count`, when the caller already knows it (filter chips compute it), saves the
    paginator its own COUNT query.
    """
    paginator = Paginator(queryset, page_size(request))
    if count is not None:
        paginator.count = count  # cached_property: pre-seeding skips the COUNT(*)
    return paginator.get_page(request.GET.get("page"))


def page_window(page: Page, radius: int = 2) -> list[int | None]:
    """Page numbers to show around the current one; None marks a gap."""
    last = page.paginator.num_pages
    wanted = {1, last} | set(range(page.number - radius, page.number + radius + 1))
    numbers = sorted(n for n in wanted if 1 <= n <= last)
    out: list[int | None] = []
    for n in numbers:
        if out and n - (out[-1] or 0) > 1:
            out.append(None)
        out.append(n)
    return out


def sort_columns(request, columns: list[tuple[str, str, str | None, bool]],
                 default: str) -> tuple[list[str], list[dict]]:
    """Ordering from `?sort=<key>` / `?sort=-<key>` and the header links for a table.

    `columns` are (key, label, orm_field or None when not sortable, numeric). Unknown keys
    fall back to `default`, so a crafted URL cannot order by an arbitrary field.
    """
    return resolve_sort(request.GET.get("sort") or default, columns, default)


def resolve_sort(sort: str, columns: list[tuple[str, str, str | None, bool]],
                 default: str) -> tuple[list[str], list[dict]]:
    sortable = {key: field for key, _label, field, _num in columns if field}
    if sort.lstrip("-") not in sortable:
        sort = default
    key, descending = sort.lstrip("-"), sort.startswith("-")
    ordering = [f"-{sortable[key]}" if descending else sortable[key]]
    headers = []
    for col_key, label, field, numeric in columns:
        active = col_key == key
        headers.append({
            "key": col_key, "label": label, "sortable": bool(field), "num": numeric,
            "next_sort": f"-{col_key}" if active and not descending else col_key,
            "aria_sort": ("descending" if descending else "ascending") if active else "",
        })
    return ordering, headers
