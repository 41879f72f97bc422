"""What a sweep found, for people: analysis of its point records, the experiment matrix, plots, and ``m9 report``."""
