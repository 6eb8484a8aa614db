"""What a ConvNet looks at and what its units respond to: Grad-CAM heatmaps and maximally activating patches."""
