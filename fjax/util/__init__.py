"""Ground floor: user errors, files on any path backend (local or gs://), workdir checks,
advisory locks and the command-line convention of every entry point (cli)."""
