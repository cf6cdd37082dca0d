"""TFDS builders of the project's data sets (array_record files, PNG-encoded images)."""
