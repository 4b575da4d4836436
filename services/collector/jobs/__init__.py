"""Discovery job runs on the collector: from an assignment to acknowledged results."""
