"""The game session room: a private match created by a player."""
