"""Identity sync: sources (pull connectors, pushed snapshots) turned into one directory, never half-applied."""
