"""The scheduler service: discoveries, schedules, job runs, dispatch and server settings.

Admins (outpostctl) define what to scan and when; a tick loop turns due schedule minutes
into queued job runs; gateways watch the dispatch feed, claim runs for the collectors
they hold (the database gives each run to exactly one), and report progress.
"""
