"""The local environment: tools built from source, a kwok cluster, FerretDB, a Pulumi workspace.

Used by the pytest fixtures, by the main job (`make up`) and by the benchmarks; every server runs on a
free loopback port with its state in a directory of its own, and is stopped by its pid.
"""
