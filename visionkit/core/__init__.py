"""The shared core every task stands on: errors, config, io, registry, weights, the model handle, training,
   results base, writers, viz. Nothing in core imports a task package."""
