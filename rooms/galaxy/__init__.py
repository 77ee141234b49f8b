"""The galaxy catalogue: real stars within 20 parsecs, their names, planets and jump lanes."""
