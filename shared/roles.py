"""Who may do what: the roles of the API and dashboard, decided here and nowhere else.

* `admin`: everything, as before (the dashboard password, an Open WebUI admin token, or
  an admin's dashboard session);
* `viewer`: published releases for management (`ANALYTICS_VIEWER_PASSWORD`, as a bearer
  token or through the login form): the summary, the trend (one point per published
  week or month) and the group breakdown of closed periods, audited and frozen
  (`functions/read/releases.py`: no combination of published figures is the total of
  fewer than `ANALYTICS_MIN_GROUP_SIZE` people), the dashboard page without its
  per-person panel, breakdowns by model, category and tag, CSV link and pipeline
  settings; never per-person rows, conversation ids, the CSV export, health details or
  processing;
* `feedback`: `ANALYTICS_FEEDBACK_TOKEN`, a bearer token for Open WebUI's Action that may
  call the feedback endpoint and nothing else (no dashboard session).

A route of `functions/api/app.py` declares the roles it admits with one of the sets
below (or `PUBLIC`); the route wrapper answers 403 to any other role.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

__all__ = [
    "ADMIN_ONLY",
    "DISCLOSURE_CONTROLLED",
    "FEEDBACK_WRITERS",
    "PUBLIC",
    "READERS",
    "SESSION_ROLES",
    "Access",
    "Role",
]


class Role(StrEnum):
    ADMIN = "admin"
    VIEWER = "viewer"
    FEEDBACK = "feedback"


Access = frozenset[Role] | Literal["public"]
"""What a route admits: a set of roles, or anyone (`public`: login, assets, health probe)."""

PUBLIC: Final = "public"
ADMIN_ONLY: Final[frozenset[Role]] = frozenset({Role.ADMIN})
READERS: Final[frozenset[Role]] = frozenset({Role.ADMIN, Role.VIEWER})
"""Aggregates: admins and management viewers."""
FEEDBACK_WRITERS: Final[frozenset[Role]] = frozenset({Role.FEEDBACK, Role.ADMIN})
"""The feedback endpoint: Open WebUI's Action (its dedicated token) and admins."""
SESSION_ROLES: Final[frozenset[Role]] = frozenset({Role.ADMIN, Role.VIEWER})
"""The roles that can sign in to the dashboard (and so hold a session cookie)."""
DISCLOSURE_CONTROLLED: Final[frozenset[Role]] = frozenset({Role.VIEWER})
"""Roles that read published releases (functions/read/side.py: ViewerReadSide); admins see raw figures."""
