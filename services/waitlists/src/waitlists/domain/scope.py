"""The scopes figures are asked for: one service, an organisation's services, or an area's."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    SERVICE = "service"
    ORGANISATION = "organisation"
    AREA = "area"
