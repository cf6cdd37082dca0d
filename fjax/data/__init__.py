"""Data: a built TFDS data set (sources) -> the protocol's selection (selection) -> one
example made model inputs (examples: masks, faces, labels, augment, self_blend, tamper,
corruptions) -> grain loaders (loaders). The per-example modules are plain numpy/OpenCV,
also used by the data builders."""
