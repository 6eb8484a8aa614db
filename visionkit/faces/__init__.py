"""Faces: detection and alignment, encoders, verify, an enrolled database, triplet-loss training, calibration."""
