"""Starhold: a Durable Object style room server for real-time multiplayer games, on Ray."""
