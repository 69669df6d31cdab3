"""What every stage and package shares: errors, atomic outputs, params, schemas, legends, the registry."""
