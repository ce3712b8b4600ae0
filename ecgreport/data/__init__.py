"""Data tables shipped with the package (report_terms.csv: see ecgreport.reports)."""
