from data_builders.demo_forgeries.demo_forgeries import DemoForgeries  # registers the builder
