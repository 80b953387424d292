"""Token providers (none, login, API key, Cognito) and Cognito's SRP sign-in."""
