"""Datasets: class folders, YOLO/VOC/COCO labels, image/mask pairs, face folders."""
