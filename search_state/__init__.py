"""A run's saved state: the journal of evaluated candidates and the reports made from it."""
