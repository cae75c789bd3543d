"""Referral domain core: the aggregate, its state machine and value objects. Pure Python."""
