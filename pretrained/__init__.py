"""Registry data, labels, model cards and small trained weights (installed as ``visionkit.pretrained``)."""
