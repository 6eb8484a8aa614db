"""Semantic segmentation (U-Net): image/mask data, model, losses, tiled prediction, training, IoU evaluation."""
