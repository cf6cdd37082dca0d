from data_builders.dfdc.dfdc import Dfdc  # registers the builder
