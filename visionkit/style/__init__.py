"""Neural style transfer (Gatys et al. 2015): VGG features, Gram-matrix losses, pixel optimisation."""
