"""Ground floor: user errors, files on any path backend (local or gs://), workdir checks
and advisory locks."""
