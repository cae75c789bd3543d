"""Referrals service."""
