"""REST chat users: RestChatUser, bot targets, HealthCheckUser."""
