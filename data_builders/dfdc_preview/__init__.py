from data_builders.dfdc_preview.dfdc_preview import DfdcPreview  # registers the builder
