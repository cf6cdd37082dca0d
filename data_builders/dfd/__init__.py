from data_builders.dfd.dfd import Dfd  # registers the builder
