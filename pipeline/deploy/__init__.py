"""Deployment: Kubernetes overlays, image references and manifest policies derived from the profiles."""
