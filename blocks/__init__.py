"""Pure functions from incidents and analyses to Slack Block Kit JSON.

Arrives with the Slack bot.
"""
