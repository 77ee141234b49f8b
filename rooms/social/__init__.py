"""Chat and presence of the solar systems: sans-I/O building blocks (text, rate, history, presence)."""
