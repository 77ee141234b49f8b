"""The accounts room: usernames and password hashes."""
