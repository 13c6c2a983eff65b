"""The lore index: chunk notes, embed them, store them in LanceDB, and retrieve what a request needs."""
