"""Local fakes of the services the bot talks to, each speaking the service's real wire protocol.

They exist so integration tests run the real client libraries over a real socket on 127.0.0.1
(see DESIGN.md, "Testing contract") instead of replacing the code under test with mocks.
"""
