"""The root of every broken rule of the domain."""


class DomainError(Exception):
    """A rule of the domain was broken."""
