from data_builders.wild_deepfake.wild_deepfake import WildDeepfake  # registers the builder
