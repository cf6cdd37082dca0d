"""The trainer core: train state, sharding over a mesh, the jitted train loop,
checkpoints, evaluation, metrics and their writers."""
