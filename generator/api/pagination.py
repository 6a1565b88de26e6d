"""Page-number pagination (20 per page, REST_FRAMEWORK["PAGE_SIZE"]) that refuses malformed page numbers.

DRF's own class reads `?page=` (empty) as page 1 and `?page=last` as the last page; here a page is a
whole number from 1: anything else is a 400 naming `page`, and a page past the end is a 404.
"""
import re

from rest_framework import pagination
from rest_framework.exceptions import ValidationError

from generator.pagination import CardPaginator


class PageNumberPagination(pagination.PageNumberPagination):
    last_page_strings = ()

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        digits = raw.lstrip("0")
        if not re.fullmatch(r"[0-9]+", digits):
            raise ValidationError({self.page_query_param: ["A page number from 1 is required."]})
        # A valid but enormous page number is simply past the end (404), like any other such page;
        # capping it keeps Python from converting a thousand-digit string.
        return int(digits) if len(digits) <= 18 else 10**18

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = "Page number, from 1 (20 results per page)."
        return parameters


class ImagePagination(PageNumberPagination):
    """Pages of the image list as the gallery pages its cards (generator.pagination.CardPaginator): the page's
    ids sorted on the picture table alone, then those pictures with job and model joined; a search counts its
    matches in the query that ranks them."""

    django_paginator_class = CardPaginator
