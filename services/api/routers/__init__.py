"""One router per resource: health, services, files."""
