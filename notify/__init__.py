"""Outbound channels beyond Slack: Jira, email, PagerDuty, Teams.

Arrives with those integrations.
"""
