"""What the orchestrator operator and API share: the Analytics CRD, the services record, file storage."""
