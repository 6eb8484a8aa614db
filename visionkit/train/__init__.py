"""Training, evaluating and exporting classifiers: ``visionkit finetune``, ``evaluate``, ``export``."""
