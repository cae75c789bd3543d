"""One router per feature of the API."""

from notifications.entrypoints.routers import contacts, deliveries, endpoints, preferences

ROUTERS = (endpoints.router, deliveries.router, contacts.router, preferences.router)
