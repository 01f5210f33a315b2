"""File imports, the pure part: mappings, column plans, row verdicts, reading rows."""
