from data_builders.defacto_faceswap.defacto_faceswap import DefactoFaceswap  # registers the builder
