"""The solar system room: one real star system with its planets, pirates and combat."""
