"""The game's economy rules (issue 16): resources, regional scarcity, fields."""
