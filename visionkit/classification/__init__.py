"""Image classification with a registry or saved model: resize + centre crop (or ten-crop TTA) -> top-k labels."""
