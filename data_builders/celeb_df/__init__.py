from data_builders.celeb_df.celeb_df import CelebDf  # registers the builder
