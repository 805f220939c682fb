"""Small helpers shared across the core: environment detection and name validation."""
