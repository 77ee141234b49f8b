"""A pilot's own room: direct messages kept for one player (``inbox``)."""
