"""The protocol between Switchboard's roles: messages, codec, endpoints, names, settings.

The supervisor, the session workers and the bot never import each other; they meet here.
"""
