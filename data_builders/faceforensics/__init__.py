from data_builders.faceforensics.faceforensics import Faceforensics  # registers the builder
