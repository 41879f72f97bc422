"""What happened to a point: statuses and failure kinds, the classification of what the engine child left behind,
round statistics, roofline and SLA conditions."""
