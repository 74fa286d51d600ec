"""Sans-io address handling: who the client is (socket peer, PROXY protocol, trusted X-Forwarded-For)."""
