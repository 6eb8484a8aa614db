"""Object detection (YOLOv2-style): data sets, model, decode + NMS, prediction, training, evaluation, anchors."""
