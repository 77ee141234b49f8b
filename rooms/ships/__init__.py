"""Rooms where every player flies one ship at 10 Hz (the base of systems and sessions)."""
