"""The sample analytics module: a discrete-event simulation of a hospital histopathology lab."""
