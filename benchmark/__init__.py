"""The motor-bench harness: data, training, evaluation, records, tuning, tables."""
