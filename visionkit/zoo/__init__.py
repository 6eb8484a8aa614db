"""Classic architectures as Keras builders (LeNet-5 … EfficientNet-Lite0), layer tables and conv-cost arithmetic."""
