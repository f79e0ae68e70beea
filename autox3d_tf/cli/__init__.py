"""The `autox3d` command line."""
