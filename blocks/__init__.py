"""Pure functions from incidents and analyses to Slack Block Kit JSON, within Slack's limits.

`incident` renders the incident message, `thread` the posts under it, `commands` the
`/incident` replies and error messages, `modals` the email modal. `text` escapes and cuts,
`kit` holds the block shapes, `ids` the action, block and callback ids and their typed
payloads, `limits` Slack's limits and the check that a payload keeps them. Nothing here does
I/O: the bot renders, then posts.
"""
