"""The pilot room kind: one per player, the owner of record of the player's ship (``room``), and its direct messages (``inbox``)."""
