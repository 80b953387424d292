"""WebSocket chat: WebSocketChatUser, its connection, frames and metrics."""
