"""Backbone shared by the SEND referral services. Imports no service."""
