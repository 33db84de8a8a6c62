"""The scheduled tasks: channel pulls now, pushes and deliveries as they arrive."""
