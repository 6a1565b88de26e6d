"""Pages of pictures for the gallery's card grids and the API's image list (generator.api.pagination)."""
from django.core.paginator import Paginator
from django.db.models import Count, Window


class CardPaginator(Paginator):
    """Pages of cards in two steps, so that PostgreSQL sorts narrow rows: first the page's ids, ordered and
    sliced on the picture table alone, then those pictures with their job, model and owner joined. In one step
    it joined every match before sorting: an Explore search for "hair" (28,000 of 100,000 pictures) sorted
    28,000 joined 800-byte rows, spilling to disk, 270 ms (docs/gallery-bench.md). One query more a page,
    whatever its size; the second query repeats the page's filters, so visibility is applied twice.

    A search (a queryset annotated with `rank`) reads every match to rank them anyway, so the same query
    counts them (COUNT(*) OVER ()) instead of a second pass over the matches for the paginator's count."""

    def page(self, number):
        if "rank" in self.object_list.query.annotations and not self.orphans:
            page = self._counted_page(number)
        else:
            page = super().page(number)
            page.object_list = list(page.object_list.values_list("pk", flat=True))
        found = {image.pk: image for image in self.object_list.filter(pk__in=page.object_list).order_by()}
        page.object_list = [found[pk] for pk in page.object_list if pk in found]
        return page

    def _counted_page(self, number):
        try:
            wanted = int(number)
        except (TypeError, ValueError):
            return super().page(number)  # PageNotAnInteger, as Paginator says it
        bottom = (wanted - 1) * self.per_page
        rows = [] if wanted < 1 else list(
            self.object_list.annotate(total_matches=Window(Count("*"))).values_list("pk", "total_matches")
            [bottom:bottom + self.per_page])
        if not rows:  # past the end or no match: Paginator's own answer (an empty first page, or EmptyPage)
            return super().page(number)
        self.__dict__["count"] = rows[0][1]  # Paginator.count is a cached_property
        return self._get_page([pk for pk, _ in rows], self.validate_number(wanted), self)
