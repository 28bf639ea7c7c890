"""The replaced system's mobile app, served unchanged (``../shared/OLD_API.md`` of the project):
its codes, envelopes and field names, shaped from the same data as the rest of the API."""
