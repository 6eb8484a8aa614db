"""Task pipelines: load -> preprocess -> model -> postprocess -> Result."""
