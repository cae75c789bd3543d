"""HTTP pieces every service mounts: problem+json errors, health, readiness, Prometheus metrics."""
