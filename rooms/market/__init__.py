"""The market room kind (issue 16): its matching engine is ``book``."""
