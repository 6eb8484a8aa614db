"""Keras model builders (functions with their defaults in the signature) and shared layers."""
