"""Real faults for service-backed strategies: a real server is killed, restarted and paused
while real client processes work against it, and the server's count is checked against
what the clients were told (a Jepsen-style counter check)."""
