"""The model server: engine command lines, GPU profiles and context sizing, process lifecycle."""
