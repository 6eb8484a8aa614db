"""Pure maths: boxes, NMS, anchors, losses, metrics (numpy/TF, no I/O)."""
