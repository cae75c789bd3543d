"""Waitlists service."""
