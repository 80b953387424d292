"""Streaming LLM chat: StreamingChatUser, stream parsers, the HTTP stream client, LLM metrics."""
